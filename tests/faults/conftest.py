"""The fault tests run on both catalog backends: the synthetic workdir's DuckDB
catalog as it is, and the same rows copied into a fresh PostgreSQL database."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.fixture(params=["duckdb", "postgresql"])
def catalog_url(request, synthetic) -> str:
    """The synthetic workdir's catalog on the parametrised backend (the workdir is
    ``synthetic``; commands get it through ``VIDA_CATALOG``)."""
    if request.param == "duckdb":
        return str(synthetic / "catalog.db")
    url = request.getfixturevalue("pg_url")
    copied = run_cli("catalog", "copy", str(synthetic / "catalog.db"), url)
    assert copied.returncode == 0, copied.stderr
    return url


@pytest.fixture(params=["duckdb", "postgresql"])
def empty_catalog_url(request, tmp_path) -> str:
    """A new, empty catalog on the parametrised backend."""
    if request.param == "duckdb":
        return str(tmp_path / "catalog.db")
    return request.getfixturevalue("pg_url")
