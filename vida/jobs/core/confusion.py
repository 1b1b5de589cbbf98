"""The confusion-matrix PNG every classifier training draws.

An experiment draws one per training, all with the same classes: each process keeps
one figure per class list and redraws only what changes (the cells, their counts,
the title), which gives the same bytes as a new figure for a fraction of the work
(``tests/test_confusion.py`` checks the bytes).
"""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np

from vida.jobs.core.plots import figure, save_png

_FIGURES: dict[tuple[str, ...], tuple[Any, Any, Any]] = {}
_LOCK = threading.Lock()  # a Dask worker may run several trainings on its threads


def confusion_png(matrix: np.ndarray, classes: list[str], title: str, *,
                  reuse: bool = True) -> bytes:
    """The confusion matrix as a PNG (``reuse=False``: on a new figure)."""
    with _LOCK:
        key = tuple(classes)
        drawn = _FIGURES.get(key) if reuse else None
        if drawn is None:
            drawn = _confusion_figure(classes, matrix)
            if reuse:
                _FIGURES.clear()  # one class list at a time: an experiment has one
                _FIGURES[key] = drawn
        fig, ax, image = drawn
        _fill(ax, image, matrix, title)
        buffer = io.BytesIO()
        save_png(fig, buffer, tight=False)
        return buffer.getvalue()


def _confusion_figure(classes: list[str], matrix: np.ndarray) -> tuple[Any, Any, Any]:
    """A bare ``Figure`` with fixed margins: no pyplot figure manager and no
    ``tight_layout`` (which draws the figure twice)."""
    size = max(4.0, 0.45 * len(classes) + 2)
    fig, ax = figure(size, size)
    ax.set_position((0.3, 0.3, 0.65, 0.6))  # room for rotated class names
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig, ax, image


def _fill(ax: Any, image: Any, matrix: np.ndarray, title: str) -> None:
    """This matrix's cells, counts and title on the figure."""
    image.set_data(matrix)
    image.set_clim(matrix.min(), matrix.max())
    for text in list(ax.texts):
        text.remove()
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > matrix.max() / 2 else "black")
    ax.set_title(title, fontsize=9)
