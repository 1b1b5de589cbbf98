"""The batch job's frame: its lifecycle and run record, executors (local processes,
Dask), the machine's scratch folder, what workers import first, figures."""
