"""The clip key: how every room of VIDA names a clip.

``clip_key = "<class>/<clip_id>"``, because Moments in Time clip ids repeat across
classes.  It lives here, below media and catalog alike, so that finding a clip on
disk and recording it in the catalog cannot disagree on its name.
"""

from __future__ import annotations


def clip_key(class_name: str, clip_id: str) -> str:
    """The catalog key of a clip: class and id, since ids repeat across classes."""
    return f"{class_name}/{clip_id}"


def class_of(key: str) -> str:
    """The class part of a clip key (everything before the last '/')."""
    return key.rsplit("/", 1)[0]
