"""The figures jobs draw: matplotlib without pyplot (no backend to choose, no global
figure state to close), so that a worker process can draw too, saved as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

DPI = 110


def figure(width: float, height: float) -> tuple[Any, Any]:
    """A new figure and its one axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def color(i: int) -> tuple[float, float, float, float]:
    """The i-th colour of the palette every plot uses (tab10, cycling)."""
    from matplotlib import colormaps

    return colormaps["tab10"](i % 10)


def save_png(fig: Any, target: Path | IO[bytes], *, tight: bool = True) -> None:
    """Write the figure as a PNG (``tight``: lay it out to fit its labels first)."""
    if tight:
        fig.tight_layout()
    fig.savefig(target, format="png", dpi=DPI)
