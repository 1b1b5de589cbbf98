"""Real media files made by the tests with PyAV: normal, odd and hostile."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


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


def write_video(
    path: Path,
    frames: list[np.ndarray] | None = None,
    *,
    n_frames: int = 90,
    fps: Fraction | int = 30,
    size: tuple[int, int] = (64, 48),
    audio: np.ndarray | None = None,  # [channels, n] float32
    audio_rate: int = 16000,
    audio_layout: str = "mono",
    audio_codec: str = "aac",
    pts_seconds: list[float] | None = None,  # variable frame rate: one time per frame
    rotation: int | None = None,
    codec: str = "libx264",
) -> Path:
    """Write an MP4 (or any container by suffix) with optional audio."""
    width, height = size
    if frames is None:
        frames = [numbered_frame(i, width, height) for i in range(n_frames)]
    with av.open(str(path), "w") as out:
        vstream = out.add_stream(codec, rate=Fraction(fps))
        vstream.width, vstream.height = width, height
        vstream.pix_fmt = "yuv420p"
        if pts_seconds is not None:
            vstream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            vstream.metadata["rotate"] = str(rotation)
        astream = None
        if audio is not None:
            astream = out.add_stream(audio_codec, rate=audio_rate, layout=audio_layout)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_seconds is not None:
                frame.pts = int(round(pts_seconds[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            for packet in vstream.encode(frame):
                out.mux(packet)
        for packet in vstream.encode(None):
            out.mux(packet)
        if astream is not None:
            block = 1024
            for start in range(0, audio.shape[1], block):
                chunk = np.ascontiguousarray(audio[:, start:start + block])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=audio_layout)
                frame.sample_rate = audio_rate
                frame.pts = start
                frame.time_base = Fraction(1, audio_rate)
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode(None):
                out.mux(packet)
    return path


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
