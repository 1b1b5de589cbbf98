"""What a fresh interpreter has imported after running some code: start-up is paid
by every command and every worker, so tests pin what must stay out of it."""

from __future__ import annotations

import ast
import subprocess
import sys


def imported_after(code: str, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` modules are in ``sys.modules`` after ``code`` runs in a
    new interpreter."""
    probe = f"import sys\n{code}\nprint(sorted(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip().split("\n")[-1]
    return ast.literal_eval(out)
