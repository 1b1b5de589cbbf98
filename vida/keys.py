"""The clip key and the clip's recorded source: how every room of VIDA names a clip
and finds its media.

``clip_key = "<class>/<clip_id>"``, because Moments in Time clip ids repeat across
classes.  A clip's ``source_uri`` is relative to the catalog's media root when it is
under it, else absolute, so that a catalog works from any folder and moves with its
data.  Both live here, below media and catalog alike, so that finding a clip on
disk and recording it in the catalog cannot disagree.
"""

from __future__ import annotations

import os
from pathlib import Path


def clip_key(class_name: str, clip_id: str) -> str:
    """The catalog key of a clip: class and id, since ids repeat across classes."""
    return f"{class_name}/{clip_id}"


# The clips a training job takes unless told otherwise (``--query``): every clip with a
# split whose media could be read.
SPLIT_CLIPS = ("SELECT clip_key, class_name, split FROM clips "
               "WHERE split IS NOT NULL AND status <> 'failed'")


def class_of(key: str) -> str:
    """The class part of a clip key (everything before the last '/')."""
    return key.rsplit("/", 1)[0]


# -- where a clip's media is: recorded relative to the catalog's media root ----

def stored_uri(path: str, media_root: str | None) -> str:
    """How the catalog records a clip's media: relative to the media root when it is
    under it (the catalog then moves with its data), else absolute."""
    absolute = os.path.abspath(path)
    if media_root:
        root = os.path.abspath(media_root)
        if absolute == root or absolute.startswith(root.rstrip(os.sep) + os.sep):
            return Path(os.path.relpath(absolute, root)).as_posix()
    return absolute


def resolve_uri(uri: str, media_root: str | None) -> str:
    """Where a recorded source is on this machine: absolute stays; relative is under
    the media root (the folder ingest ran in, for a catalog that recorded none)."""
    if os.path.isabs(uri) or not media_root:
        return uri
    return os.path.join(media_root, uri)


def relocated_uri(uri: str, media_root: str | None, old: str, new: str) -> str:
    """A recorded source after its media moved from ``old`` to ``new`` (absolute)."""
    absolute = os.path.normpath(os.path.join(media_root or old, uri))
    old = os.path.normpath(old)
    if absolute == old or absolute.startswith(old.rstrip(os.sep) + os.sep):
        return os.path.normpath(os.path.join(new, os.path.relpath(absolute, old)))
    return absolute


# -- a clip that is a window of its file: the source's media fragment -------------
# The catalog keeps a window in its own columns (``clips.start_s``, ``end_s``); a
# source handed to a job carries it as a W3C media fragment, ``<path>#t=<start>,<end>``,
# so that every job which decodes a clip again gets its window with its path.

_FRAGMENT = "#t="


def with_window(source: str, start: float | None, end: float | None) -> str:
    """``source`` with the window ``[start, end)`` in seconds (none: the whole file)."""
    if start is None and end is None:
        return source
    return f"{source}{_FRAGMENT}{_seconds(start or 0.0)},{'' if end is None else _seconds(end)}"


def split_window(source: str) -> tuple[str, float | None, float | None]:
    """(path, start, end) of a source that may carry a window (:func:`with_window`)."""
    path, sep, span = str(source).rpartition(_FRAGMENT)
    if not sep:
        return str(source), None, None
    start, _, end = span.partition(",")
    return path, float(start), float(end) if end else None


def _seconds(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else repr(float(value))
