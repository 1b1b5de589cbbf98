"""Batch jobs: they compose media, encoders, store and catalog, and record runs."""
