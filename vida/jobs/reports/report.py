"""An experiment's results read back from the catalog, and its report: one HTML page.

The record step of an experiment writes its tables to ``run_metrics``
(:func:`vida.jobs.experiments.results.record_results`); here they become the same tables again
(:func:`experiment_tables`), so that the report, ``bin/demo_section`` and a notebook
all show the catalog's numbers, never a copy of them.  The page is self-contained
(styles inline, plots as ``data:`` images, no script): it can be mailed or archived
and opens without the catalog, the runs folder or a network.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.results import (
    ExperimentRun,
    experiment_run,
    query_text,
    summary_rows,
)
from vida.errors import UsageError
from vida.jobs.experiments.figures import (
    plot_gains,
    plot_groups,
    plot_label_efficiency,
    plot_missing_grid,
    plot_missing_heatmap,
    plot_recovery,
    plot_results,
)
from vida.jobs.experiments.groups import record_groups, table_from_metrics
from vida.jobs.experiments.per_class import REAL
from vida.jobs.experiments.plan import TRAIN_MISSING_PREFIX, missing_rates
from vida.jobs.experiments.quality import QUALITY_PREFIX
from vida.jobs.experiments.statistics import UNDEFINED, adjust_as_one_family
from vida.jobs.experiments.variants import GENERATED_AT_TEST as GENERATED_FILL
from vida.jobs.experiments.variants import labelled, learns_from_training_audio
from vida.stats import Interval
from vida.views import Section, experiment_sections, verdicts

NAMES = {"svdmap": "SVDMap", "cafmap": "CAFMap"}


@dataclass
class ExperimentTables:
    """An experiment's tables as its record step wrote them (columns as ``summarise``
    names them); a table the experiment did not make is None."""

    run: ExperimentRun
    main: pd.DataFrame
    study: pd.DataFrame | None = None
    labels: pd.DataFrame | None = None
    per_class: pd.DataFrame | None = None
    correlations: dict[str, Interval | None] = field(default_factory=dict)
    quality: pd.DataFrame | None = None  # how close each generator's audio is to real
    missing: pd.DataFrame | None = None  # the missing-rate grid (train x test rates)
    per_group: pd.DataFrame | None = None  # the main table by --group-by's groups

    @property
    def title(self) -> str:
        return f"{NAMES.get(self.run.arch, self.run.arch)} experiment {self.run.run_id}"


def _wide(rows: pd.DataFrame, key: str) -> pd.DataFrame:
    """(group, measure, value) rows -> one row per group (in the order written), a
    column per measure; the group in column ``key``."""
    order = list(dict.fromkeys(rows["group"]))
    wide = rows.pivot_table(index="group", columns="measure", values="value",
                            aggfunc="first").reindex(order)
    wide.columns.name = None
    return wide.rename_axis(key).reset_index()


def _mark_undefined(table: pd.DataFrame, real_gains: pd.Series) -> pd.DataFrame:
    """Where a variant that learns from the training audio has no share of real
    audio's gain because real audio gains nothing significant, say so (as the
    experiment did) rather than leave a blank."""
    if "recovery" not in table:  # no share was defined: none was written
        table = table.assign(recovery=float("nan"), recovery_ci_low=float("nan"),
                             recovery_ci_high=float("nan"))
    undefined = [learns_from_training_audio(v) and not gains and pd.isna(r) for v, gains, r
                 in zip(table["variant"], real_gains, table["recovery"], strict=True)]
    return table.assign(recovery_note=[UNDEFINED if u else None for u in undefined])


def _main(catalog: Catalog, run_id: str, table: str) -> pd.DataFrame | None:
    rows = summary_rows(catalog, run_id, table)
    if rows.empty:
        return None
    if table == "study":
        rows = rows.assign(group=rows["group"].str.removeprefix("study/"))
    frame = _wide(rows, "variant")
    real = frame.set_index("variant")["delta_ci_low"].get(REAL, float("nan")) \
        if "delta_ci_low" in frame else float("nan")
    return _mark_undefined(frame, pd.Series([real > 0] * len(frame)))


def _by_variant(catalog: Catalog, run_id: str, table: str, key: str, prefix: str
                ) -> pd.DataFrame | None:
    """A table whose rows are ``<prefix><key value>/<variant>``: columns ``key`` and
    ``variant`` first, then one per measure."""
    rows = summary_rows(catalog, run_id, table)
    if rows.empty:
        return None
    frame = _wide(rows, "group")
    first, variant = frame["group"].str.split("/", n=1, expand=True).T.to_numpy()
    frame = frame.drop(columns="group")
    frame.insert(0, "variant", variant)
    frame.insert(0, key, [value.removeprefix(prefix) for value in first])
    return frame


def _labels(catalog: Catalog, run_id: str) -> pd.DataFrame | None:
    frame = _by_variant(catalog, run_id, "labels", "labels_per_class", "labels=")
    if frame is None:
        return None
    real = frame[frame["variant"] == REAL].set_index("labels_per_class")["delta_ci_low"]
    return _mark_undefined(frame, frame["labels_per_class"].map(real > 0).fillna(False))


def _per_class(catalog: Catalog, run_id: str) -> pd.DataFrame | None:
    return _by_variant(catalog, run_id, "per_class", "class_name", "class=")


def _correlations(catalog: Catalog, run_id: str) -> dict[str, Interval | None]:
    rows = summary_rows(catalog, run_id, "correlations")
    value = {(g, m): v for g, m, v in rows.itertuples(index=False)}
    found: dict[str, Interval | None] = {}
    for group, measure in value:
        if not measure.endswith(("_ci_low", "_ci_high")):
            found[f"{group.removeprefix('rank_correlation/')}/{measure}"] = Interval(
                value[(group, measure)], value[(group, measure + "_ci_low")],
                value[(group, measure + "_ci_high")])
    return found


def _quality(catalog: Catalog, run_id: str) -> pd.DataFrame | None:
    rows = summary_rows(catalog, run_id, "quality")
    if rows.empty:
        return None
    frame = _wide(rows, "generator")
    return frame.assign(generator=frame["generator"].str.removeprefix(QUALITY_PREFIX))


def _missing(catalog: Catalog, run_id: str) -> pd.DataFrame | None:
    """The missing-rate grid: rows ``<cell>/<variant>/<measure>``, the cell one or two
    parts (:func:`~vida.jobs.experiments.plan.missing_table`)."""
    rows = summary_rows(catalog, run_id, "missing")
    if rows.empty:
        return None
    frame = _wide(rows, "group")
    parts = frame.pop("group").str.split("/")
    width = [2 if p[0].startswith(TRAIN_MISSING_PREFIX) else 1 for p in parts]
    cells = [missing_rates("/".join(p[:w])) for p, w in zip(parts, width, strict=True)]
    frame.insert(0, "variant", ["/".join(p[w:]) for p, w in zip(parts, width, strict=True)])
    frame.insert(0, "test_missing", [c[1] for c in cells])
    frame.insert(0, "train_missing", [c[0] for c in cells])
    frame.insert(3, "id", [_variant_id(v) for v in frame["variant"]])
    best = frame[frame["is_best_stand_in"] == 1].set_index(["train_missing", "test_missing"])
    cells = pd.MultiIndex.from_frame(frame[["train_missing", "test_missing"]])
    return frame.assign(best_stand_in=best["variant"].reindex(cells).to_numpy())


def _variant_id(label: str) -> str:
    found = labelled(label)
    return found.id if found is not None else label


def experiment_tables(catalog: Catalog, run_id: str) -> ExperimentTables:
    """The experiment's tables, from its run's metrics; a one-line error for an id that
    names no experiment or one that has not finished."""
    run = experiment_run(catalog, run_id)
    main = _main(catalog, run_id, "main")
    if main is None:
        raise UsageError(f"experiment {run_id} is {run.status} and has no results yet"
                         + (f" ({run.error})" if run.error else "")
                         + "; run the same command again to finish it")
    return ExperimentTables(run=run, main=main, study=_main(catalog, run_id, "study"),
                            labels=_labels(catalog, run_id),
                            per_class=_per_class(catalog, run_id),
                            correlations=_correlations(catalog, run_id),
                            quality=_quality(catalog, run_id),
                            missing=_missing(catalog, run_id),
                            per_group=table_from_metrics(
                                summary_rows(catalog, run_id, "per_group")))


# --- the page ---------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
li { margin: 0.15em 0; }
"""


def _png(draw: Callable[[Path], object]) -> str | None:
    """A plot drawn by ``draw(path)`` as a ``data:`` URI (None if it drew nothing)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plot.png"
        if draw(path) is False or not path.exists():
            return None
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, na_rep="", escape=True)


def _lines(lines: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def _sql(tables: ExperimentTables, *names: str) -> str:
    text = "\n\n".join(query_text(name, tables.run.run_id) + ";" for name in names)
    return ("<details><summary>the SQL behind this table (<code>vida-batch sql</code>, "
            "or DuckDB in a notebook); each row is <code>&lt;row&gt;/&lt;measure&gt;"
            f"</code></summary><pre>{html.escape(text)}</pre></details>")


def _figure(uri: str | None, alt: str) -> str:
    return "" if uri is None else f'<p><img src="{uri}" alt="{html.escape(alt)}"></p>'


def _sections(tables: ExperimentTables) -> str:
    """The experiment's tables in the terminal's layout (:func:`experiment_sections`),
    each with the SQL behind it and its figure."""
    sections = experiment_sections(tables.main, tables.study, tables.labels,
                                   tables.per_class, tables.correlations, tables.quality,
                                   tables.missing, tables.run.params.get("notes", []),
                                   tables.per_group)
    return "\n".join(_section(section, tables) for section in sections)


# a section -> the catalog queries behind its table
_QUERIES = {"main": ("main",), "study": ("study",), "labels": ("labels",),
            "per_class": ("per_class", "correlations"), "quality": ("quality",),
            "missing": ("missing",), "per_group": ("per_group",)}


def _section(section: Section, tables: ExperimentTables) -> str:
    heading = "Main table" if section.heading is None else section.heading[:1].upper() + \
        section.heading[1:]
    table = (f"<p>{html.escape(section.empty)}</p>" if section.empty and section.frame.empty
             else _table(section.frame))
    lines = section.lines
    if section.name == "labels":  # the page also gives each label count's verdicts
        labels = tables.labels
        lines = verdicts(labels.assign(variant=labels["variant"] + " @ "
                                       + labels["labels_per_class"] + " labels/class")
                         ) + lines
    parts = [f"<h2>{html.escape(heading)}</h2>", table, _lines(lines)]
    if section.name in _QUERIES:
        parts.append(_sql(tables, *_QUERIES[section.name]))
    return "\n".join([*parts, _section_figure(section.name, tables)])


def _section_figure(name: str, tables: ExperimentTables) -> str:
    title = tables.title
    draw = {"main": ("results", lambda p: plot_results(tables.main, p, title)),
            "labels": ("label efficiency",
                       lambda p: plot_label_efficiency(tables.labels, p, title)),
            "recovery": ("recovery", lambda p: plot_recovery(tables.labels, p, title)),
            "per_class": ("per class", lambda p: plot_gains(tables.per_class, p, title)),
            "per_group": ("by group", lambda p: plot_groups(tables.per_group, p, title)),
            "missing": ("audio missing at training and at test",
                        lambda p: plot_missing_grid(tables.missing, p, title)),
            "missing heatmap": ("generated audio minus the best stand-in",
                                lambda p: plot_missing_heatmap(
                                    tables.missing, p, title, GENERATED_FILL.label))}
    figures = [draw[key] for key in (name, f"{name} heatmap") if key in draw]
    return "".join(_figure(_png(plot), alt) for alt, plot in figures)


def report_html(tables: ExperimentTables) -> str:
    """The whole page."""
    run = tables.run
    spec = run.params.get("spec", run.params)
    took = ("" if run.finished_at is None else
            f", finished {run.finished_at:%Y-%m-%d %H:%M} UTC in "
            f"{(run.finished_at - run.started_at).total_seconds():.0f} s")
    _, comparisons = adjust_as_one_family({"main": tables.main, "study": tables.study,
                                           "labels": tables.labels,
                                           "missing": tables.missing})
    head = (f"<h1>{html.escape(tables.title)}</h1><p>Status {html.escape(run.status)}"
            f"{took}. Intervals are 95 % bootstrap intervals over test clips and seeds; "
            "\"vs vision only\" is the paired difference on the same clips and seeds, with "
            "its raw p and its Benjamini-Hochberg adjusted p over every comparison the "
            f"experiment makes ({comparisons} of them).</p>")
    plan = run.params.get("plan", {})
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(tables.title)}</title><style>{STYLE}</style></head><body>",
        head, _sections(tables),
        "<h2>Spec</h2><p>Rerun it with <code>vida-batch experiment rerun "
        f"{html.escape(run.run_id)}</code>. Its plan: "
        + html.escape(", ".join(f"{n} {kind}" for kind, n in plan.items())) + ".</p>",
        f"<pre>{html.escape(json.dumps(spec, indent=2, sort_keys=True))}</pre>",
        "</body></html>"])


def write_report(catalog: Catalog, run_id: str, out: Path, group_by: str | None = None
                 ) -> Path:
    """The experiment's report, written to ``out``; with ``group_by`` (a ``--group-by``
    query), its table by those groups is computed and recorded first (its CSV and plot
    beside the page)."""
    if group_by is not None:
        tables = experiment_tables(catalog, run_id)  # refuses an unfinished experiment
        record_groups(catalog, run_id, group_by, out.parent / f"{out.stem}-groups",
                      tables.title)
    page = report_html(experiment_tables(catalog, run_id))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
