"""What a test that drives the CLI as a user does needs: a command that must succeed,
and the catalog read as a notebook reads it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def ok(result):
    """``result`` (a finished ``run_cli``), asserted to have succeeded."""
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def sql(catalog_path: Path, query: str) -> pd.DataFrame:
    """Read the catalog as a notebook does, from this process and this folder."""
    from vida import open_catalog

    catalog = open_catalog(catalog_path, create=True)
    try:
        return catalog.sql(query)
    finally:
        catalog.dispose()
