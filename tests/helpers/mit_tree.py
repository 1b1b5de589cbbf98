"""A Moments-in-Time-shaped copy of a synthetic dataset, as MiT ships it:
``training/`` and ``validation/`` folders of ``<class>/<clip>.mp4`` with
``trainingSet.csv`` and ``validationSet.csv`` beside them (no header; rows
``<class>/<clip>.mp4,<class>,<agreement>,<disagreement>``, paths relative to the
split folder)."""

from __future__ import annotations

import shutil
from pathlib import Path


def mit_tree(synthetic: Path, out: Path, val_per_class: int = 1) -> Path:
    """Copy ``synthetic`` (a ``vida-batch synth`` folder) to ``out`` in MiT's layout;
    the last ``val_per_class`` clips of each class go to validation."""
    rows: dict[str, list[str]] = {"training": [], "validation": []}
    for class_dir in sorted((synthetic / "training").iterdir()):
        clips = sorted(class_dir.glob("*.mp4"))
        for i, clip in enumerate(clips):
            split = "validation" if i >= len(clips) - val_per_class else "training"
            target = out / split / class_dir.name / clip.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(clip, target)
            rows[split].append(f"{class_dir.name}/{clip.name},{class_dir.name},3,0")
    (out / "trainingSet.csv").write_text("\n".join(rows["training"]) + "\n")
    (out / "validationSet.csv").write_text("\n".join(rows["validation"]) + "\n")
    return out
