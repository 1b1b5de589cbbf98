"""Alembic migrations of the VIDA catalog (installed as ``vida.migrations``)."""
