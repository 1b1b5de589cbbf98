"""An installed distribution with a ``vida.encoders`` entry point, as pip would leave
it, with no pip involved: put ``site`` on PYTHONPATH and the encoder is found."""

from __future__ import annotations

import textwrap
from pathlib import Path


def fake_distribution(site: Path, module: str, source: str, name: str, attr: str) -> Path:
    """``module.py`` holding ``source``, declared as encoder ``name`` -> ``module:attr``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    dist = module.replace("_", "-")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[vida.encoders]\n{name} = {module}:{attr}\n")
    return site
