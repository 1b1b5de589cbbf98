"""Real media files made by the tests with PyAV: normal, odd and hostile."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vida.media import write


def write_video(path: Path, frames: list[np.ndarray] | None = None, *, n_frames: int = 90,
                size: tuple[int, int] = (64, 48), **options) -> Path:
    """:func:`vida.media.write.write_video`, with numbered frames by default."""
    if frames is None:
        frames = [numbered_frame(i, *size) for i in range(n_frames)]
    return write.write_video(path, frames, **options)


def write_class_folders(root: Path, per_class: int, n_classes: int = 3) -> Path:
    """``root/class<c>/clip<i>.mp4``: 3 s videos, each with its own tone."""
    for c in range(n_classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            write_video(root / f"class{c}" / f"clip{i}.mp4", n_frames=90,
                        audio=tone(3, 16000, freq=200 + 40 * i + 300 * c))
    return root


def numbered_frame(i: int, width: int, height: int) -> np.ndarray:
    """An RGB frame whose brightness encodes its index (readable after lossy coding)."""
    frame = np.full((height, width, 3), (i * 7) % 256, dtype=np.uint8)
    frame[: height // 2, : width // 2, 0] = 255 - (i * 7) % 256  # some structure for HOG
    return frame


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 440.0,
         amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(wave[None], channels, axis=0)


def write_audio_only(path: Path, seconds: float = 3.0) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        wave = tone(seconds, 16000)
        for start in range(0, wave.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, start:start + 1024]),
                                               format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
