"""The rooms of ARCHITECTURE.md: which layer may import which, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import vida

ROOT = Path(vida.__file__).parent

# room -> the rooms it may import (besides itself); see ARCHITECTURE.md
MAY_IMPORT = {
    "errors": set(),
    "keys": {"errors"},
    "clock": {"errors"},
    "processes": {"errors"},
    "views": {"errors"},
    "stats": {"errors"},
    "catalog": {"errors", "keys", "clock", "processes"},
    "store": {"errors", "catalog", "keys", "clock", "processes"},
    "media": {"errors", "keys", "clock"},
    "encoders": {"errors", "media", "keys", "clock"},
    "semantics": {"errors", "media", "encoders", "keys", "clock"},
    "models": {"errors", "keys", "clock"},
    "synth": {"errors", "media", "keys", "clock"},
    "jobs": {"errors", "catalog", "store", "media", "encoders", "semantics", "models",
             "synth", "keys", "clock", "stats", "views", "processes"},  # views: the report
    "cli": {"errors", "jobs", "catalog", "store", "media", "encoders", "semantics", "models",
            "synth", "keys", "clock", "views", "stats", "processes"},
}


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "vida" and len(parts) > 1 else None


def imports_of(path: Path) -> set[str]:
    """Every vida module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("vida.")}


def test_every_room_imports_only_the_rooms_below_it():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        here = relative.parts[0].removesuffix(".py")
        if here not in MAY_IMPORT:
            continue
        for module in imports_of(path):
            there = room(module)
            if there and there != here and there not in MAY_IMPORT[here]:
                wrong.append(f"{relative} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_the_rooms_in_the_table_are_the_rooms_on_disk():
    on_disk = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    on_disk |= {p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"}
    assert on_disk == set(MAY_IMPORT)


def test_the_cli_holds_no_logic_of_the_catalog():
    """A command parses, calls a library function and prints: the CLI imports no
    record or schema module, and hands no SQL of its own to the catalog."""
    wrong = []
    for path in sorted((ROOT / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        wrong += [f"{path.name} imports {m}" for m in imports_of(path)
                  if m.startswith(("vida.catalog.records", "vida.catalog.schema"))]
        wrong += [f"{path.name}:{node.lineno} runs its own SQL" for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in {"sql", "read", "execute", "text"} and node.args
                  and isinstance(node.args[0], (ast.Constant, ast.JoinedStr))]
    assert not wrong, "\n".join(wrong)


def test_the_cli_prints_only_what_a_view_made():
    """Every line a command prints is made in :mod:`vida.views`: no ``echo`` in the CLI
    prints text of its own (a literal, an f-string, a concatenation or ``format``)."""

    def own_text(node: ast.AST) -> bool:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "views":
            return False  # what a view made of the arguments it was given
        return any(isinstance(n, (ast.JoinedStr, ast.BinOp))
                   or (isinstance(n, ast.Constant) and isinstance(n.value, str))
                   or (isinstance(n, ast.Attribute) and n.attr == "format")
                   for n in ast.walk(node))

    wrong = [f"{path.name}:{node.lineno}"
             for path in sorted((ROOT / "cli").glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and node.args and own_text(node.args[0])
             and (isinstance(node.func, ast.Attribute) and node.func.attr == "echo"
                  or isinstance(node.func, ast.Name) and node.func.id == "echo_lines")]
    assert not wrong, "\n".join(wrong)


def test_the_store_reads_and_writes_the_catalog_only_through_its_records():
    """The store may hold a :class:`~vida.catalog.database.Catalog`, but every table it
    reads or writes goes through ``vida.catalog.records`` (never the schema or SQL)."""
    wrong = [f"{path.relative_to(ROOT)} imports {module}"
             for path in sorted((ROOT / "store").rglob("*.py"))
             for module in imports_of(path)
             if module.startswith("vida.catalog") and module != "vida.catalog.database"
             and not module.startswith("vida.catalog.records")]
    assert not wrong, "\n".join(wrong)


def test_jobs_and_the_cli_never_branch_on_the_catalogs_backend():
    """DuckDB or PostgreSQL is the catalog's business: what a job asks of it, and the
    order it gets its clips in, is the same on both."""
    branching = [str(path.relative_to(ROOT)) for room in ("jobs", "cli")
                 for path in sorted((ROOT / room).rglob("*.py"))
                 if "is_duckdb" in path.read_text() or ".dialect" in path.read_text()]
    assert not branching, branching


# vida/jobs, bottom to top: each sub-package may import those before it (and
# itself); the demo, which runs every step, all of them
JOB_LAYERS = ["core", ("data", "semantics"), "training", "experiments", "reports", "demo"]


def test_the_jobs_sub_packages_import_one_way():
    level = {}
    for i, layer in enumerate(JOB_LAYERS):
        for name in (layer,) if isinstance(layer, str) else layer:
            level[name] = i
    jobs = ROOT / "jobs"
    on_disk = {p.name for p in jobs.iterdir() if (p / "__init__.py").exists()}
    on_disk |= {p.stem for p in jobs.glob("*.py") if p.stem != "__init__"}
    assert on_disk == set(level)
    wrong = []
    for path in sorted(jobs.rglob("*.py")):
        here = path.relative_to(jobs).parts[0].removesuffix(".py")
        if here == "__init__":
            continue
        for module in imports_of(path):
            parts = module.split(".")
            if parts[:2] == ["vida", "jobs"] and len(parts) > 2 and parts[2] != here \
                    and level[parts[2]] >= level[here]:
                wrong.append(f"jobs/{path.relative_to(jobs)} imports {module}")
    assert not wrong, "\n".join(wrong)
