"""Experiments: plans of trainings for SVDMap and CAFMap, the driver that runs them,
and their tables."""
