"""Batch jobs: the only layer that composes media, encoders, store and catalog, and
records runs.  Sub-packages, each importing only those listed before it:

* ``core``: the batch job's lifecycle and run record, executors, scratch, figures;
* ``data``: ingest, encode, the legacy import, splits, the catalog commands' tasks;
* ``semantics``: tags, the semantic dictionary, prototypes, frames, captions and
  conditions;
* ``training``: one classifier or generator training, generated sets, distillation;
* ``experiments``: plans of trainings for SVDMap and CAFMap, their driver and tables;
* ``reports``: the HTML report;

and ``demo``, which runs every step on a synthetic dataset.
"""
