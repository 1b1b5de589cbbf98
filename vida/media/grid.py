"""A clip on a feature set's grid: T frames at F fps, S x S pixels, and its audio
over the same T / F seconds, from a video file or from a folder of frame images.

Ingest, encode and CAFMap's representative frames all decode through here, so a
clip gives the same frames whichever job reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vida.keys import split_window
from vida.media.decode import (
    AUDIO_RATE,
    DecodedClip,
    MediaError,
    decode_audio,
    decode_clip,
    fit_audio,
)
from vida.media.frames import read_frames


@dataclass(frozen=True)
class FrameGrid:
    """Where a feature set's time steps sit in a clip: ``n_frames`` frames at ``fps``,
    ``frame_size`` pixels square.  The defaults are ingest's, and a set whose params
    record no grid (an imported one) is on them."""

    n_frames: int = 18
    fps: float = 6.0
    frame_size: int = 128

    @classmethod
    def of(cls, params: Mapping[str, Any], steps: int | None = None) -> FrameGrid:
        """The grid a feature set's ``params`` record (``steps``: its T, for a set that
        records no ``n_frames``)."""
        return cls(int(params.get("n_frames", steps or cls.n_frames)),
                   float(params.get("fps", cls.fps)),
                   int(params.get("frame_size", cls.frame_size)))

    @property
    def seconds(self) -> float:
        return self.n_frames / self.fps

    def decode(self, path: Path, audio_path: Path | None = None) -> DecodedClip:
        """The clip at ``path`` on this grid (:func:`decode_on_grid`)."""
        return decode_on_grid(path, self.n_frames, self.fps, self.frame_size, audio_path)


def decode_on_grid(path: Path, n_frames: int, fps: float, size: int,
                   audio_path: Path | None = None) -> DecodedClip:
    """``path``: a video file (its own audio track), a window of one (a source with a
    media fragment, :func:`vida.keys.with_window`), or a frame folder whose audio, if
    any, is the file ``audio_path`` (a missing or unreadable one raises ``MediaError``).
    A folder's facts are the grid's: ``fps`` is F and its duration the frames found."""
    file, start, end = split_window(str(path))
    path = Path(file)
    if not path.is_dir():
        return decode_clip(path, n_frames, fps, size, start=start, end=end)
    if start is not None:
        raise MediaError("bad_window", f"{path}: a frame folder has no time to cut a "
                         "window from; give the video file")
    frames, found, width, height = read_frames(path, n_frames, size)
    audio = None
    if audio_path is not None:
        seconds = n_frames / fps
        raw = decode_audio(audio_path, seconds=seconds)
        if raw is not None and raw.size:
            audio = fit_audio(raw, int(round(seconds * AUDIO_RATE)))
    return DecodedClip(frames, audio, fps, width, height, found / fps, found,
                       padded=found < n_frames)
