"""What people read: query results, experiment tables and each command's summary,
formatted.  The CLI prints through this module only, and the HTML report lays out
the same sections (:func:`experiment_sections`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where a table is made: a command module imports
    # this one before it starts its workers, and should not wait for pandas first
    import pandas as pd


def _isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def format_frame(frame: pd.DataFrame, fmt: str = "table") -> str:
    """A DataFrame as an aligned table, CSV with a header row, or JSON records."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso")
    if frame.empty:
        return "(no rows)" if len(frame.columns) == 0 else " | ".join(frame.columns) + "\n(no rows)"
    import pandas as pd

    with pd.option_context("display.max_rows", None, "display.max_columns", None,
                           "display.width", 200, "display.max_colwidth", 80):
        return frame.to_string(index=False, na_rep="NULL")


def experiment_table(table: pd.DataFrame) -> str:
    """An experiment's results: 'mean ± std' over seeds, and where per-clip results are
    known, top-1's 95 % CI and the paired difference from vision only with its p-value."""
    return format_frame(experiment_frame(table), "table")


def experiment_frame(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`experiment_table`'s cells (``n_test`` where the table has it)."""
    import pandas as pd

    shown = pd.DataFrame({
        "variant": table["variant"],
        **({"n_test": table["n_test"]} if "n_test" in table else {}),
        **{name: [f"{m:.3f} ± {s:.3f}" for m, s in
                  zip(table[f"{key}_mean"], table[f"{key}_std"], strict=True)]
           for name, key in (("top-1", "top1"), ("top-5", "top5"), ("macro-F1", "macro_f1"))},
    })
    if "top1_ci_low" in table:
        shown.insert(shown.columns.get_loc("top-1") + 1, "top-1 95% CI",
                     [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in
                      zip(table["top1_ci_low"], table["top1_ci_high"], strict=True)])
    if "delta_vs_vision" in table:
        shown["vs vision only (95% CI), p"] = [
            "" if _isna(row["delta_vs_vision"]) else _difference(row)
            for row in table.to_dict("records")]
    if "recovery" in table:
        shown["of real audio's gain (95% CI)"] = [_recovery(row)
                                                  for row in table.to_dict("records")]
    return shown


def _difference(row: dict) -> str:
    text = (f"{row['delta_vs_vision']:+.3f} [{row['delta_ci_low']:+.3f}, "
            f"{row['delta_ci_high']:+.3f}], p={row['p_vs_vision']:.3g}")
    q = row.get("p_adjusted")
    return text if q is None or _isna(q) else f"{text} (adj. {q:.3g})"


def _recovery(row: dict) -> str:
    if isinstance(row.get("recovery_note"), str):
        return "undefined"
    if _isna(row.get("recovery")):
        return ""
    return (f"{row['recovery']:+.0%} [{row['recovery_ci_low']:+.0%}, "
            f"{row['recovery_ci_high']:+.0%}]")


def _paired_text(row: dict, names: tuple[str, str, str, str, str]) -> str:
    """A paired difference as the lines print it: ``names`` are the row's difference,
    interval ends, p-value and family-adjusted p-value."""
    diff, low, high, p, q = (row.get(n, float("nan")) for n in names)
    adjusted = "" if _isna(q) else f", adjusted p={q:.3g}"
    return f"{diff:+.3f} top-1, 95% CI [{low:+.3f}, {high:+.3f}], p={p:.3g}{adjusted}"


VS_VISION = ("delta_vs_vision", "delta_ci_low", "delta_ci_high", "p_vs_vision", "p_adjusted")
VS_CONTROL = ("delta_vs_control", "control_ci_low", "control_ci_high", "p_vs_control",
              "p_control_adjusted")
VS_BEST = ("delta_vs_best", "best_ci_low", "best_ci_high", "p_vs_best", "p_best_adjusted")


BEATS, WORSE, WITHIN_NOISE = ("beats vision only", "is worse than vision only",
                              "cannot be told from vision only")


def verdict_of(row: dict) -> str | None:
    """A variant's verdict against vision only (None: vision only itself).  Where the
    experiment adjusted its p-values as one family (Benjamini-Hochberg), the adjusted
    p decides (below 0.05); otherwise the 95 % interval of the difference does (it
    excludes 0)."""
    if _isna(row.get("delta_vs_vision", float("nan"))):
        return None
    q = row.get("p_adjusted", float("nan"))
    found = q < 0.05 if not _isna(q) else (row["delta_ci_low"] > 0 or row["delta_ci_high"] < 0)
    if not found:
        return WITHIN_NOISE
    return BEATS if row["delta_vs_vision"] > 0 else WORSE


def verdicts(table: pd.DataFrame, only: str | None = None) -> list[str]:
    """One line per variant compared with vision only (``only``: those with that
    verdict)."""
    lines = []
    for row in table.to_dict("records"):
        verdict = verdict_of(row)
        if verdict is None or only not in (None, verdict):
            continue
        lines.append(f"{row['variant']} {verdict}: {_paired_text(row, VS_VISION)}")
    return lines


def winners(table: pd.DataFrame, label_table: pd.DataFrame | None = None) -> list[str]:
    """The lines of every variant that beats vision only: in the main table, then at
    each label count of the label-efficiency table."""
    tables = [table] + ([] if label_table is None else [
        group.assign(variant=group["variant"] + f" @ {n} labels/class")
        for n, group in label_table.groupby("labels_per_class", sort=False)])
    return [line for t in tables for line in verdicts(t, only=BEATS)]


def recovery_table(table: pd.DataFrame) -> str:
    """Per label count (rows) and generated variant (columns): the share of real
    audio's gain over vision only that it recovers, with its 95 % CI."""
    wide = recovery_frame(table)
    return "(no generated variant)" if wide.empty else format_frame(wide, "table")


def recovery_frame(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`recovery_table`'s cells (no rows where no variant has a share)."""
    import pandas as pd

    rows = table[table["recovery"].notna() | table.get("recovery_note", pd.Series(
        dtype=object)).notna()] if "recovery" in table else table.iloc[:0]
    if rows.empty:
        return pd.DataFrame()
    cells = rows.assign(cell=[_recovery(row) for row in rows.to_dict("records")])
    wide = cells.pivot(index="labels_per_class", columns="variant", values="cell")
    wide = wide.loc[list(dict.fromkeys(rows["labels_per_class"])),
                    list(dict.fromkeys(rows["variant"]))]
    return wide.reset_index().rename_axis(columns=None)


def label_efficiency_table(table: pd.DataFrame) -> str:
    """Top-1 with its 95 % CI per variant (columns) and labels per class (rows)."""
    return format_frame(label_efficiency_frame(table), "table")


def label_efficiency_frame(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`label_efficiency_table`'s cells."""
    cells = table.assign(cell=[f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                               zip(table["top1_mean"], table["top1_ci_low"],
                                   table["top1_ci_high"], strict=True)])
    wide = cells.pivot(index="labels_per_class", columns="variant", values="cell")
    wide = wide.loc[list(dict.fromkeys(table["labels_per_class"])),
                    list(dict.fromkeys(table["variant"]))]
    return wide.reset_index().rename_axis(columns=None)


def per_class_gains(table: pd.DataFrame) -> str:
    """Per class (rows) and variant (columns): the gain over vision only on the class's
    test clips, with its 95 % CI."""
    return format_frame(per_class_frame(table), "table")


def per_class_frame(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`per_class_gains`'s cells."""
    rows = table[table["delta_vs_vision"].notna()]  # every variant but vision only
    cells = rows.assign(cell=[f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for d, lo, hi in
                              zip(rows["delta_vs_vision"], rows["delta_ci_low"],
                                  rows["delta_ci_high"], strict=True)])
    wide = cells.pivot(index="class_name", columns="variant", values="cell")
    return wide[list(dict.fromkeys(rows["variant"]))].reset_index().rename_axis(columns=None)


def correlation_lines(found: dict) -> list[str]:
    """One line per rank correlation across classes, or why there is none."""
    lines = []
    for name, interval in found.items():
        variant, what = name.split("/", 1)
        value = ("undefined (fewer than 3 classes, or one side constant)" if interval is None
                 else f"{interval.mean:+.2f}, 95% CI [{interval.low:+.2f}, {interval.high:+.2f}]")
        lines.append(f"rank correlation across classes of {variant}'s gain {what}: {value}")
    return lines


def control_lines(table: pd.DataFrame) -> list[str]:
    """A variant against its control (generated audio alone against the frames reduced
    to the audio's width), per label count, with the family-adjusted p."""
    if "delta_vs_control" not in table:
        return []
    lines = []
    for row in table[table["delta_vs_control"].notna()].to_dict("records"):
        lines.append(f"{row['variant']} @ {row['labels_per_class']} labels/class vs the "
                     f"frames PCA-reduced to its width: {_paired_text(row, VS_CONTROL)}")
    return lines


def missing_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Top-1 with its 95 % CI per cell of the missing-rate grid (rows: the shares of
    train and test audio missing) and variant (columns)."""
    cells = table.assign(cell=[f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                               zip(table["top1_mean"], table["top1_ci_low"],
                                   table["top1_ci_high"], strict=True)])
    wide = cells.pivot(index=["train_missing", "test_missing"], columns="variant",
                       values="cell")
    wide = wide[list(dict.fromkeys(table["variant"]))].reset_index().rename_axis(columns=None)
    return wide.rename(columns={"train_missing": "missing at training",
                                "test_missing": "at test"})


def missing_lines(table: pd.DataFrame, notes: Sequence[str] = ()) -> list[str]:
    """The verdicts against vision only of the runs with part of their audio missing
    (the main table's own runs have theirs there), each cell's comparison of every
    variant with the cell's best stand-in, and why a variant is absent (``notes``)."""
    rows = table[~table["main_run"].astype(bool)]
    return verdicts(rows.assign(variant=rows["variant"] + " @ " + _cell_names(rows))) \
        + best_stand_in_lines(table) + list(notes)


def _cell_names(rows: pd.DataFrame) -> pd.Series:
    return (rows["train_missing"].map("{:g}".format) + " missing at training, "
            + rows["test_missing"].map("{:g}".format) + " at test")


def best_stand_in_lines(table: pd.DataFrame) -> list[str]:
    """Per cell, each variant that reads generated or translated audio against the
    cell's best stand-in, on the same clips and seeds."""
    if "delta_vs_best" not in table:
        return []
    rows = table[table["id"].isin(STAND_IN_RIVALS) & table["delta_vs_best"].notna()]
    lines = []
    for row, cell in zip(rows.to_dict("records"), _cell_names(rows), strict=True):
        lines.append(f"{row['variant']} @ {cell} {_against_best(row)} the best stand-in "
                     f"({row['best_stand_in']}): {_paired_text(row, VS_BEST)}")
    return lines


def _against_best(row: dict) -> str:
    """The verdict on a row against its cell's best stand-in, as :func:`verdict_of`
    decides one against vision only."""
    q = row.get("p_best_adjusted", float("nan"))
    found = q < 0.05 if not _isna(q) else (row["best_ci_low"] > 0 or row["best_ci_high"] < 0)
    if not found:
        return "cannot be told from"
    return "beats" if row["delta_vs_best"] > 0 else "is worse than"


# the variants set against the best stand-in in the tables' lines
STAND_IN_RIVALS = ("generated-fill", "mlp")


def quality_frame(table: pd.DataFrame) -> pd.DataFrame:
    """How close each generator's audio is to the real audio on the test clips: R²
    against the train mean, the class mean's own R², the generator's R² over the class
    mean, and retrieval of each clip's own audio against chance."""
    import pandas as pd

    def cell(row: dict, measure: str, digits: str = "+.3f") -> str:
        return (f"{row[measure]:{digits}} [{row[measure + '_ci_low']:{digits}}, "
                f"{row[measure + '_ci_high']:{digits}}]")

    rows = table.to_dict("records")
    return pd.DataFrame({
        "generator": [r["generator"] for r in rows],
        "R² (vs train mean)": [cell(r, "r2") for r in rows],
        "class mean's R²": [cell(r, "class_mean_r2") for r in rows],
        "R² over class mean": [cell(r, "r2_over_class_mean") for r in rows],
        "median rank (chance)": [f"{cell(r, 'median_rank', '.0f')} "
                                 f"({r['chance_median_rank']:.1f})" for r in rows],
        "recall@1 (chance)": [f"{cell(r, 'recall1', '.3f')} ({r['chance_recall1']:.3f})"
                              for r in rows],
        "recall@5 (chance)": [f"{cell(r, 'recall5', '.3f')} ({r['chance_recall5']:.3f})"
                              for r in rows],
        **({"AST top-5 IoU (train mean's)": [
            f"{cell(r, 'tag_iou', '.3f')} ({r['train_mean_tag_iou']:.3f})" for r in rows]}
           if "tag_iou" in table else {})})


def quality_lines(table: pd.DataFrame) -> list[str]:
    """Per generator, in plain words, what its audio holds: sound of each clip, only
    its class's sound, or nothing beyond the train mean."""
    lines = []
    for row in table.to_dict("records"):
        over = (f"R² over the class mean {row['r2_over_class_mean']:+.3f} "
                f"[{row['r2_over_class_mean_ci_low']:+.3f}, "
                f"{row['r2_over_class_mean_ci_high']:+.3f}]")
        if row["r2_over_class_mean_ci_low"] > 0:
            said = f"closer to each clip's real audio than its class's mean sound ({over})"
        elif row["r2_ci_low"] > 0:
            said = (f"closer than the train mean (R² {row['r2']:+.3f}) but not closer than "
                    f"the class's mean sound ({over}): it mostly tells the class, which "
                    "vision already does")
        else:
            said = f"no closer to the real audio than the train mean (R² {row['r2']:+.3f})"
        found = ("finds a clip's own audio among the top 5 more often than chance"
                 if row["recall5_ci_low"] > row["chance_recall5"] else
                 "does not find a clip's own audio among the top 5 more often than chance")
        lines.append(f"{row['generator']}: {said}; it {found} ({row['recall5']:.3f} "
                     f"against {row['chance_recall5']:.3f})")
    return lines


@dataclass(frozen=True)
class Section:
    """One part of an experiment's results, as the terminal prints it and the report
    shows it: a heading (None: the main table, under the experiment's own title), the
    table, and the lines under it."""

    name: str  # main, study, labels, recovery, per_class
    heading: str | None
    frame: pd.DataFrame
    lines: list[str] = field(default_factory=list)
    empty: str = ""  # what stands for the table when it has no rows

    def text(self) -> str:
        """The table as aligned text (or what stands for it)."""
        return self.empty if self.empty and self.frame.empty else format_frame(self.frame)


def experiment_sections(main: pd.DataFrame, study: pd.DataFrame | None = None,
                        labels: pd.DataFrame | None = None,
                        per_class: pd.DataFrame | None = None,
                        correlations: dict | None = None,
                        quality: pd.DataFrame | None = None,
                        missing: pd.DataFrame | None = None,
                        notes: Sequence[str] = (),
                        per_group: pd.DataFrame | None = None) -> list[Section]:
    """The one layout of an experiment's tables, in the order people read them."""
    # why a chosen variant did not run: under the grid where there is one, else here
    sections = [Section("main", None, experiment_frame(main),
                        verdicts(main) + ([] if missing is not None else list(notes)))]
    if quality is not None:
        sections.append(Section("quality", "how close generated audio is to the real audio "
                                "on the test clips (95% CI; R² against the train mean)",
                                quality_frame(quality), quality_lines(quality)))
    if missing is not None:
        sections.append(Section("missing", "audio missing: each model trained with that "
                                "share of the train clips' audio missing and tested with that "
                                "share of the test clips' missing, filled in as its column "
                                "says (the same clips for every variant; vision only and + "
                                "real audio: the main table's runs)",
                                missing_frame(missing), missing_lines(missing, notes)))
    if study is not None:
        sections.append(Section("study", "the study's class-level filter (other classes, "
                                "other test clips: not comparable with the table above)",
                                experiment_frame(study)))
    if labels is not None:
        sections.append(Section("labels", "label efficiency (classifiers on N labelled "
                                "train clips per class)", label_efficiency_frame(labels),
                                control_lines(labels)))
        if "recovery" in labels:
            sections.append(Section("recovery", "share of real audio's gain over vision "
                                    "only that generated audio recovers (95% CI)",
                                    recovery_frame(labels), empty="(no generated variant)"))
    if per_class is not None:
        sections.append(Section("per_class", "per class: gain over vision only on the "
                                 "class's test clips (95% CI)", per_class_frame(per_class),
                                 correlation_lines(correlations or {})))
    if per_group is not None:
        sections.append(group_section(per_group))
    return sections


def group_section(table: pd.DataFrame) -> Section:
    """``--group-by``: top-1 per group and variant, the paired difference from vision
    only on the group's clips, adjusted over every group as one family, and the share
    of real audio's gain recovered."""
    return Section("per_group", "by group (--group-by): top-1 on the group's test clips, "
                   "gain over vision only (95% CI; p adjusted over every group and variant "
                   "as one family), share of real audio's gain recovered",
                   group_frame(table))


def group_frame(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`group_section`'s cells, one row per group and variant."""
    import pandas as pd

    def span(row: dict, name: str, low: str, high: str, sign: str = "+") -> str:
        if _isna(row.get(name)):
            return ""
        return f"{row[name]:{sign}.3f} [{row[low]:{sign}.3f}, {row[high]:{sign}.3f}]"

    def note(row: dict) -> str:
        text = row.get("recovery_note")
        return text if isinstance(text, str) else ""

    return pd.DataFrame([
        {"group": row["group"], "n": int(row["n_test"]), "variant": row["variant"],
         "top-1 [95% CI]": span(row, "top1", "top1_ci_low", "top1_ci_high", ""),
         "vs vision only": span(row, "delta_vs_vision", "delta_ci_low", "delta_ci_high"),
         "p adj": "" if _isna(row.get("p_adjusted")) else f"{row['p_adjusted']:.3g}",
         "recovered": span(row, "recovery", "recovery_ci_low", "recovery_ci_high") or note(row)}
        for row in table.to_dict("records")])


def group_lines(result: Any) -> list[str]:
    """``--group-by``'s table, then where its CSV and plot are."""
    section = group_section(result.table)
    lines = [f"\n{section.heading}", section.text()]
    if result.ungrouped:
        lines.append(f"  {result.ungrouped} test clips have no group in the query: left out")
    return lines + [f"groups {result.csv}", f"plot   {result.plot}"]


# -- each command's summary ---------------------------------------------------------


def catalog_lines(url: str, revision: str | None, store_root: Path) -> list[str]:
    """``init``: where the catalog and the store are."""
    return [f"catalog {url} at revision {revision}", f"store   {store_root}"]


def upgrade_line(applied: list[str], revision: str | None) -> str:
    if applied:
        return f"applied {', '.join(applied)}; catalog at {revision}"
    return f"catalog already at {revision}"


def status_lines(found: Any) -> list[str]:
    """``status``: clips, feature sets and unfinished runs (a ``CatalogStatus``)."""
    return ["clips", table_or(found.clips, "  (none yet: run ingest)"),
            "\nfeature sets", table_or(found.sets, "  (none yet)"),
            "\nruns not finished (abandoned: the process is gone; rerun the command)",
            table_or(found.unfinished, "  (none)")]


def table_or(frame: pd.DataFrame, empty: str) -> str:
    """A table, or ``empty`` when it has no rows."""
    return format_frame(frame, "table") if len(frame) else empty


def fsck_lines(report: Any, compacting: bool) -> list[str]:
    """``fsck``: what was repaired, each problem, dead rows, what was compacted."""
    lines = [f"repaired {path}" for path in report.repaired]
    lines += [str(problem) for problem in report.problems]
    if report.dead_rows:
        lines.append(f"{report.dead_rows} dead rows ({report.dead_bytes / 1e6:.1f} MB) that "
                     "no feature points at" + ("" if compacting else ": `fsck --compact` "
                                               "reclaims them"))
    lines += [f"compacted {path}" for path in report.compacted]
    lines.append(f"{report.shards_checked} shards checked, {len(report.problems)} problem(s)"
                 + (f", {len(report.repaired)} repaired" if report.repaired else ""))
    return lines


def restore_lines(report: Any) -> list[str]:
    """``fsck --restore``: each shard put back or left, then the count."""
    lines = [f"restored {path} ({rows} feature rows)" for path, rows in report.restored]
    lines += [f"left in quarantine {path}: {why}" for path, why in report.left]
    lines.append(f"{len(report.restored)} shard(s) restored, {len(report.left)} left")
    return lines


def copied_line(copied: dict[str, int], url: str) -> str:
    return f"copied {sum(copied.values())} rows in {len(copied)} tables to {url}"


def relocated_line(done: Any, new: Path) -> str:
    return f"{done.moved} clips now under {new}"


def relocate_warning(done: Any) -> str | None:
    """A warning when the first clips looked for are not under the new folder."""
    if not done.absent:
        return None
    return (f"warning: {len(done.absent)} of the first {done.checked} clips are not there "
            f"(e.g. {done.absent[0]}): was OLD right?")


def ingest_lines(summary: Any) -> list[str]:
    """``ingest``: clips by status, failures by reason, manifest rows refused, the run."""
    counts = ", ".join(f"{summary.by_status.get(s, 0)} {s}"
                       for s in ("ok", "flagged", "failed", "skipped"))
    lines = [f"{summary.total} clips: {counts}"]
    lines += [f"  {n:>6}  {reason}" for reason, n in summary.by_reason.most_common()]
    lines += dataset_lines(summary.listing)
    if summary.duplicates:
        lines.append(f"{summary.duplicates} manifest rows named a file listed before: "
                     "ingested once")
    if summary.refused:
        lines.append(f"{len(summary.refused)} {'annotation' if summary.listing else 'manifest'}"
                     " rows refused:")
        lines += [f"  {line}" for line in summary.refused[:10]]
        if len(summary.refused) > 10:
            lines.append(f"  ... and {len(summary.refused) - 10} more")
    return lines


def dataset_lines(listing: Any) -> list[str]:
    """A dataset's annotations: what was read, where the videos were looked for, how
    many rows had no file and how many --classes left out."""
    if listing is None:
        return []
    files = ", ".join(p.name for p in listing.annotations)
    lines = [f"annotations: {files}; videos looked for under {listing.media_root} "
             f"({listing.videos_found} video files there)"]
    if listing.missing:
        lines.append(f"{listing.missing} rows had no video file there (deleted or not "
                     "downloaded): counted as failed, missing")
    if listing.left_out:
        lines.append(f"{listing.left_out} rows left out by --classes")
    return lines


def ratings_lines(report: Any) -> list[str]:
    """``ratings import``: rows matched to clips, the unmatched, the audible, the run."""
    lines = [f"{report.file.name} ({report.kind}): {report.rows} rows, {report.matched} "
             f"matched a clip of the catalog, {len(report.unmatched)} matched none"]
    if report.unmatched:
        shown = ", ".join(report.unmatched[:5])
        more = f" and {len(report.unmatched) - 5} more" if len(report.unmatched) > 5 else ""
        lines.append(f"  not in the catalog (not ingested?): {shown}{more}")
    if report.kind == "ratings":
        lines.append(f"  {report.audible} audible, {report.matched - report.audible} not "
                     f"(source {report.source!r})")
    if report.relabelled:
        lines.append(f"  {report.relabelled} clips carry another class than their folder's "
                     "(rated_class)")
    lines += [f"  refused: {line}" for line in report.refused[:10]]
    return lines + [run_line(report.run_id)]


def legacy_import_lines(report: Any) -> tuple[list[str], list[str]]:
    """The study's .npy import: (sets imported, files refused)."""
    return ([f"imported {name}: {rows} clips" for name, rows in report.imported.items()],
            [f"refused: {reason}" for reason in report.refused.values()])


def encode_lines(summary: Any) -> list[str]:
    """``encode``: clips per set, the rate, projected sets."""
    lines = [f"{name}: {summary.encoded.get(name, 0)} clips encoded, "
             f"{summary.failed.get(name, 0)} failed" for name in summary.sets.values()]
    n = max(summary.encoded.values(), default=0)
    lines.append(f"{n} clips in {summary.seconds:.1f} s "
                 f"({n / max(summary.seconds, 1e-9):.2f} clips/s); {summary.skipped} "
                 "already done")
    return lines + [f"projected: {name}" for name in summary.projected]


def run_line(run_id: str, hint: str = "") -> str:
    return f"run {run_id}" + (f"; {hint}" if hint else "")


def tags_imported_line(source: str, n: int, known: int) -> str:
    return f"imported tags of {n} clips as source {source!r} ({known} are in the catalog)"


def tagged_line(source: str, n: int, unread: list[str]) -> str:
    return (f"tagged {n} clips as source {source!r}"
            + (f"; {len(unread)} had no audio to read at their source" if unread else ""))


def dictionary_lines(entries: dict[str, list[tuple[str, float]]]) -> list[str]:
    """``dictionary build``: each class's labels with their similarity."""
    return [f"{cls}: " + "; ".join(f"{label} ({sim:.2f})" for label, sim in items)
            for cls, items in entries.items()]


def dictionary_imported_line(name: str, classes: int, entries: int) -> str:
    return f"imported {classes} classes ({entries} entries) as {name!r}"


def filter_lines(summary: pd.DataFrame, name: str, kept: int, total: int) -> list[str]:
    """``filter``: IoU per class, then what was kept."""
    return [format_frame(summary.round(4)), f"filter {name!r}: kept {kept} of {total} clips"]


def frames_line(tally: Any) -> str:
    return (f"representative frames of {tally.done} clips"
            + (f"; {tally.failed} clips could not be read" if tally.failed else ""))


def captions_imported_line(n: int, clips: int, captioner: str) -> str:
    return f"imported {n} captions of {clips} clips as {captioner!r}"


def captioned_line(tally: Any) -> str:
    return (f"captioned {tally.done} frames"
            + (f"; {tally.failed} frames could not be read" if tally.failed else ""))


def prototypes_line(n: int, set_name: str) -> str:
    return f"{n} label prototypes in {set_name}"


def warning_line(text: str) -> str:
    return f"warning: {text}"


def wrote_line(n: int, set_name: str) -> str:
    return f"wrote {n} clips to {set_name}"


def generator_trained_line(run_id: str) -> str:
    return f"run {run_id}; next: vida-batch generate --run {run_id}"


def classifier_trained_line(run_id: str, metrics: dict[str, float]) -> str:
    return (f"run {run_id}: test top-1 {metrics['top1']:.3f}, top-5 {metrics['top5']:.3f}, "
            f"macro-F1 {metrics['macro_f1']:.3f}")


def experiment_lines(result: Any) -> list[str]:
    """An experiment's sections (:func:`experiment_sections`), then where its plots and
    CSV are; nothing for a dry run (its plan was printed)."""
    if result is None:
        return []
    lines = []
    for section in experiment_sections(result.table, result.study_table, result.label_table,
                                       result.per_class, result.correlations,
                                       result.quality, result.missing, result.notes):
        if section.heading is not None:
            lines.append(f"\n{section.heading}")
        lines.append(section.text())
        lines += [f"  {line}" for line in section.lines]
    lines.append(f"\nexperiment {result.experiment_id}\nplot  {result.plot}\n"
                 f"table {result.csv}")
    if result.label_plot is not None:
        lines.append(f"labels {result.label_plot}")
    if result.per_class is not None:
        lines.append(f"per class {result.csv.parent / 'per_class.png'}")
    return lines


def report_line(page: Path) -> str:
    return f"report {page}"


def synth_lines(result: Any, out: Path) -> list[str]:
    """``synth``: what was written, and the next command."""
    return [f"{result.n_clips} clips of {len(result.classes)} classes in {out}",
            f"tags     {result.tags_file}", f"captions {result.captions_dir}",
            f"next: vida-batch ingest {result.manifest}"]


def demo_lines(result: Any, workdir: Path) -> list[str]:
    """``demo``: both experiments, what beats vision only in each, the reports."""
    lines = ["\n== SVDMap ==", *experiment_lines(result.svdmap),
             "\n== CAFMap ==", *experiment_lines(result.cafmap),
             "\n== What beats vision only (Benjamini-Hochberg adjusted p < 0.05 over each "
             f"experiment's comparisons: SVDMap {result.svdmap.comparisons}, CAFMap "
             f"{result.cafmap.comparisons}) =="]
    for name, experiment in (("SVDMap", result.svdmap), ("CAFMap", result.cafmap)):
        wins = winners(experiment.table, experiment.label_table)
        lines += [f"{name}: {line}" for line in wins or [
            "no variant: every difference from vision only is within noise or negative"]]
    lines += [report_line(page) for page in result.reports]
    lines.append(f"\ndone in {result.seconds:.0f} s; explore with: vida-batch --catalog "
                 f"{workdir}/catalog.db --store {workdir}/store status")
    return lines
