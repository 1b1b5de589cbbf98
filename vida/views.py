"""Tables people read: query results and experiment tables, formatted."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


def format_frame(frame: pd.DataFrame, fmt: str = "table") -> str:
    """A DataFrame as an aligned table, CSV with a header row, or JSON records."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso")
    if frame.empty:
        return "(no rows)" if len(frame.columns) == 0 else " | ".join(frame.columns) + "\n(no rows)"
    with pd.option_context("display.max_rows", None, "display.max_columns", None,
                           "display.width", 200, "display.max_colwidth", 80):
        return frame.to_string(index=False, na_rep="NULL")


def experiment_table(table: pd.DataFrame) -> str:
    """An experiment's results: 'mean ± std' over seeds, and where per-clip results are
    known, top-1's 95 % CI and the paired difference from vision only with its p-value."""
    return format_frame(experiment_frame(table), "table")


def experiment_frame(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`experiment_table`'s cells (``n_test`` where the table has it)."""
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
            "" if pd.isna(row["delta_vs_vision"]) else _difference(row)
            for row in table.to_dict("records")]
    if "recovery" in table:
        shown["of real audio's gain (95% CI)"] = [_recovery(row)
                                                  for row in table.to_dict("records")]
    return shown


def _difference(row: dict) -> str:
    text = (f"{row['delta_vs_vision']:+.3f} [{row['delta_ci_low']:+.3f}, "
            f"{row['delta_ci_high']:+.3f}], p={row['p_vs_vision']:.3g}")
    q = row.get("p_adjusted")
    return text if q is None or pd.isna(q) else f"{text} (adj. {q:.3g})"


def _recovery(row: dict) -> str:
    if isinstance(row.get("recovery_note"), str):
        return "undefined"
    if pd.isna(row.get("recovery")):
        return ""
    return (f"{row['recovery']:+.0%} [{row['recovery_ci_low']:+.0%}, "
            f"{row['recovery_ci_high']:+.0%}]")


BEATS, WORSE, WITHIN_NOISE = ("beats vision only", "is worse than vision only",
                              "cannot be told from vision only")


def verdict_of(row: dict) -> str | None:
    """A variant's verdict against vision only (None: vision only itself).  Where the
    experiment adjusted its p-values as one family (Benjamini-Hochberg), the adjusted
    p decides (below 0.05); otherwise the 95 % interval of the difference does (it
    excludes 0)."""
    if pd.isna(row.get("delta_vs_vision", float("nan"))):
        return None
    q = row.get("p_adjusted", float("nan"))
    found = q < 0.05 if pd.notna(q) else (row["delta_ci_low"] > 0 or row["delta_ci_high"] < 0)
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
        q = row.get("p_adjusted", float("nan"))
        adjusted = "" if pd.isna(q) else f", adjusted p={q:.3g}"
        lines.append(f"{row['variant']} {verdict}: {row['delta_vs_vision']:+.3f} top-1, "
                     f"95% CI [{row['delta_ci_low']:+.3f}, {row['delta_ci_high']:+.3f}], "
                     f"p={row['p_vs_vision']:.3g}{adjusted}")
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
    rows = table[table["variant"] != "vision only"]
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
        q = row.get("p_control_adjusted", float("nan"))
        adjusted = "" if pd.isna(q) else f", adjusted p={q:.3g}"
        lines.append(f"{row['variant']} @ {row['labels_per_class']} labels/class vs the "
                     f"frames PCA-reduced to its width: {row['delta_vs_control']:+.3f} top-1, "
                     f"95% CI [{row['control_ci_low']:+.3f}, {row['control_ci_high']:+.3f}], "
                     f"p={row['p_vs_control']:.3g}{adjusted}")
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
                        correlations: dict | None = None) -> list[Section]:
    """The one layout of an experiment's tables, in the order people read them."""
    sections = [Section("main", None, experiment_frame(main), verdicts(main))]
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
    return sections
