"""Writing media with PyAV: an MP4 (or any container) from RGB frames and audio.

Used by ``vida-batch synth`` and by the tests that make real media files.
"""

from __future__ import annotations

import platform
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vida.media.decode import AUDIO_RATE

# x264's AVX-512 kernels (used for macroblock-tree rate control on CPUs that have
# AVX-512, e.g. AMD Zen 4) give different bitstreams for the same frames from one
# call to the next in the same process, and its SSE4/AVX2 kernels give a bitstream
# different from its C code.  Restricting x264 to the SSE2 baseline, which every
# x86-64 CPU has, gives the C code's exact output at full speed on every machine.
# Elsewhere (ARM) x264 runs its C code: slower, but the same bytes everywhere.
_X86_64 = {"x86_64", "amd64", "x64"}
X264_CPU_INDEPENDENT = "asm=MMX2,SSE,SSE2" if platform.machine().lower() in _X86_64 else "asm=0"


def codec_options(codec: str, preset: str = "ultrafast") -> dict[str, str]:
    """Encoder options that make ``codec``'s output depend on its input alone.

    Synthetic data must be the same on every machine and every run: the demo's
    numbers and ingest's content hashes depend on it.  ``preset`` ultrafast: what is
    written here is test and demo media, where the encoder's time counts and its
    compression does not (``bin/bench``'s synth rows measure it against x264's
    default, medium).
    """
    if codec in ("libx264", "libx264rgb"):
        return {"x264-params": X264_CPU_INDEPENDENT, "preset": preset}
    return {}


def write_video(
    path: Path,
    frames: list[np.ndarray],
    *,
    fps: Fraction | int = 30,
    audio: np.ndarray | None = None,  # [channels, n] float32
    audio_rate: int = AUDIO_RATE,
    audio_layout: str = "mono",
    audio_codec: str = "aac",
    pts_seconds: list[float] | None = None,  # variable frame rate: one time per frame
    rotation: int | None = None,
    codec: str = "libx264",
    preset: str = "ultrafast",
) -> Path:
    """Write an MP4 (or any container by suffix) with optional audio.

    Encoding is single-threaded and CPU-independent (:func:`codec_options`), so
    the same input gives the same bytes on any machine (ingest recognises
    unchanged clips by their content hash).
    """
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        vstream = out.add_stream(codec, rate=Fraction(fps), options=codec_options(codec, preset))
        vstream.width, vstream.height = width, height
        vstream.pix_fmt = "yuv420p"
        vstream.codec_context.thread_count = 1
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
