"""What VIDA tells its user in one line, apart from what is a bug in VIDA.

A :class:`VidaError` is a failure VIDA understands and explains: a bad option, query,
manifest or input file, a feature set or run that is not there, a catalog or store in
a state it names.  The CLI prints its message, with no traceback, and exits 1.  Every
other exception is a bug in VIDA: the CLI lets its traceback through and says so, and
how to report it (:data:`BUG_LINE`).  Each kind also derives from the builtin exception
a caller would catch for it (``ValueError``, ``KeyError``, ``FileNotFoundError``).
"""

from __future__ import annotations

BUG_LINE = ("This is a bug in VIDA, not a mistake in your input: please report it with "
            "the traceback above and the output of `vida-batch --version` (README: "
            "Reporting a bug).")


class VidaError(Exception):
    """A failure VIDA explains in one line (the user's to act on)."""


class UsageError(VidaError, ValueError):
    """A bad option, query, manifest or input file."""


class NotFound(VidaError, KeyError):
    """Something named that is not there: a feature set, a run, rows of a clip."""

    def __str__(self) -> str:  # a KeyError's str() quotes its message
        return str(self.args[0]) if self.args else ""


class MissingInput(VidaError, FileNotFoundError):
    """An input file or folder that is not there or holds nothing to read."""
