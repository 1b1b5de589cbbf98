"""Decoding media with PyAV (FFmpeg's libraries; no ffmpeg binary needed).

One demux pass per clip gives both modalities on one time grid:

* video: T frames at F fps chosen **by timestamp** (target ``t_k = t_0 + k / F``,
  the decoded frame nearest to it), so 29.97 fps, 25 fps and variable-frame-rate
  files land on the same grid; rotation metadata is applied;
* audio: resampled to 16 kHz mono float32 by FFmpeg's resampler (any rate, any
  channel layout: 5.1 is downmixed), cut to the same ``T / F`` second window.

A clip shorter than ``T / F`` seconds gets its last frame repeated and is marked
``padded``; the caller decides whether that is a flag or a skip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vida.errors import VidaError
from vida.keys import split_window

AUDIO_RATE = 16_000


class MediaError(VidaError):
    """A file that cannot give what ingest needs; ``reason`` is a short category."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass
class DecodedClip:
    """What one clip gives: T frames at working size, audio, and facts for the catalog."""

    frames: np.ndarray  # [T, S, S, 3] uint8 RGB
    audio: np.ndarray | None  # float32 mono at 16 kHz, exactly T / F seconds, or None
    fps: float | None
    width: int
    height: int
    duration_s: float | None
    n_frames: int  # distinct source frames on the grid (before padding)
    padded: bool
    rotation: int = 0


def _to_rgb(frame: av.VideoFrame, size: int, reformatter: VideoReformatter) -> np.ndarray:
    """The frame as ``[size, size, 3]`` RGB, upright.  One reformatter per clip: it
    keeps FFmpeg's scaler between frames, which ``frame.to_ndarray(width=...)``
    builds anew for every frame (a third of a clip's decoding time)."""
    image = reformatter.reformat(frame, width=size, height=size, format="rgb24").to_ndarray()
    turns = (-int(getattr(frame, "rotation", 0) or 0) // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def _window_samples(n_frames: int, fps: float) -> int:
    return int(round(n_frames / fps * AUDIO_RATE))


def fit_audio(samples: np.ndarray, n_samples: int) -> np.ndarray:
    """Zero-pad or cut a mono waveform to ``n_samples``."""
    out = np.zeros(n_samples, dtype=np.float32)
    take = min(n_samples, len(samples))
    out[:take] = samples[:take]
    return out


class _AudioCollector:
    """Audio resampled to 16 kHz mono as it is decoded; with ``start`` (a window's),
    the samples before it are dropped (a seek lands before it) and a stream that
    begins after it is led by silence, so that sample 0 is the window's start."""

    def __init__(self, start: float | None = None) -> None:
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        self.chunks: list[np.ndarray] = []
        self.start = start
        self.lead: int | None = None if start else 0  # samples to drop (< 0: to add)
        self.total = 0

    @property
    def n(self) -> int:
        """Samples kept from the window's start."""
        return max(0, self.total - (self.lead or 0))

    def push(self, frame: av.AudioFrame | None) -> None:
        if self.lead is None and frame is not None:
            first = frame.time if frame.time is not None else 0.0
            self.lead = int(round((self.start - first) * AUDIO_RATE))
            if self.lead < 0:
                self.chunks.append(np.zeros(-self.lead, np.float32))
                self.total, self.lead = -self.lead, 0
        for out in self.resampler.resample(frame):
            chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            self.chunks.append(chunk)
            self.total += len(chunk)

    def result(self) -> np.ndarray:
        samples = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        return samples[self.lead or 0:]


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise MediaError("missing", f"{path} does not exist")
    if os.path.getsize(path) == 0:
        raise MediaError("empty_file", f"{path} is 0 bytes")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError("not_media", f"{path.name}: FFmpeg cannot open it ({exc})") from None


def decode_audio(path: Path, seconds: float | None = None, start: float | None = None
                 ) -> np.ndarray | None:
    """The audio stream of any media file as 16 kHz mono float32 (None: no audio stream):
    its first ``seconds`` or more, from ``start`` (a window's: sought to, not decoded
    up to) or from the beginning."""
    with _open(path) as container:
        if not container.streams.audio:
            return None
        if start is not None:
            _seek(container, start)
        collector = _AudioCollector(start)
        limit = None if seconds is None else int(seconds * AUDIO_RATE)
        try:
            for frame in container.decode(audio=0):
                collector.push(frame)
                if limit is not None and collector.n >= limit:
                    break
            collector.push(None)
        except av.FFmpegError as exc:
            if not collector.n:
                raise MediaError("bad_audio", f"{path.name}: {exc}") from None
        return collector.result()


class _GridSampler:
    """Picks, for each of ``n_frames`` times on a grid at ``fps`` from the first
    frame's time, the decoded frame nearest to it, as frames arrive in order."""

    def __init__(self, n_frames: int, fps: float, size: int, src_fps: float | None,
                 start: float | None = None, end: float | None = None) -> None:
        self.n_frames, self.fps, self.size, self.src_fps = n_frames, fps, size, src_fps
        self.targets: list[np.ndarray] = []
        self.t0: float | None = start  # a window's grid starts at its start
        self.end = end
        self.ended = False  # a frame at or past the window's end arrived
        self.prev: tuple[float, av.VideoFrame] | None = None
        self.last_time = 0.0
        self.decoded = 0
        self.distinct: set[float] = set()
        self.rotation = 0
        self.reformatter = VideoReformatter()

    @property
    def done(self) -> bool:
        return len(self.targets) >= self.n_frames

    @property
    def finished(self) -> bool:
        """Every grid time is filled, or the window has ended."""
        return self.done or self.ended

    def offer(self, frame: av.VideoFrame) -> None:
        t = frame.time if frame.time is not None else self.decoded / (self.src_fps or self.fps)
        self.decoded += 1
        if self.decoded == 1:
            self.rotation = int(getattr(frame, "rotation", 0) or 0)
        if self.end is not None and t >= self.end - 1e-6:
            self.ended = True  # past the window: the clip ends here, as a file would
            return
        if self.t0 is None:
            self.t0 = t
        if t < self.t0:  # before a window's start (a seek lands on the key frame before)
            self.prev = (t, frame)
            return
        self.last_time = t
        while not self.done and t >= self._goal():
            goal = self._goal()
            best = (t, frame)
            if self.prev is not None and abs(self.prev[0] - goal) < abs(t - goal):
                best = self.prev
            self.distinct.add(best[0])
            self.targets.append(_to_rgb(best[1], self.size, self.reformatter))
        self.prev = (t, frame)

    def _goal(self) -> float:
        assert self.t0 is not None
        return self.t0 + len(self.targets) / self.fps

    def pad(self) -> bool:
        """Fill the targets after the last decoded frame: still inside that frame's
        display interval they take it as usual; beyond it the clip is short.  Returns
        whether any target lay beyond it (the clip was padded)."""
        assert self.prev is not None
        if self.done:
            return False
        frame_step = 1.0 / (self.src_fps or self.fps)
        last = _to_rgb(self.prev[1], self.size, self.reformatter)
        self.distinct.add(self.prev[0])
        padded = False
        while not self.done:
            padded |= self._goal() > self.last_time + frame_step + 1e-6
            self.targets.append(last)
        return padded


def _demux(container: av.container.InputContainer, path: Path, sampler: _GridSampler,
           streams: list, audio: _AudioCollector | None, audio_needed: int) -> None:
    """Decode until the grid and the audio window are full (or the streams end); a
    corrupt tail after some frames keeps what decoded (it is padded and flagged)."""
    try:
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if not isinstance(frame, av.AudioFrame):
                    sampler.offer(frame)
                elif audio is not None and audio.n < audio_needed:
                    audio.push(frame)
            if sampler.finished and (audio is None or audio.n >= audio_needed):
                break
    except av.FFmpegError as exc:
        if sampler.prev is None:
            raise MediaError("undecodable", f"{path.name}: {exc}") from None
    if sampler.prev is None:
        raise MediaError("no_frames", f"{path.name}: the video stream has no decodable frame")


def _audio_window(audio: _AudioCollector | None, needed: int, size: int
                  ) -> np.ndarray | None:
    """The ``needed`` samples collected, fitted to ``size``; None for no stream, or a
    stream that decodes to nothing."""
    if audio is None:
        return None
    try:
        audio.push(None)  # flush the resampler
    except av.FFmpegError:
        pass
    return None if audio.n == 0 else fit_audio(audio.result()[:needed], size)


def _duration(container: av.container.InputContainer, vstream: Any) -> float | None:
    if container.duration:
        return container.duration / av.time_base
    if vstream.duration and vstream.time_base:
        return float(vstream.duration * vstream.time_base)
    return None


def decode_clip(path: Path, n_frames: int = 18, fps: float = 6.0, size: int = 128,
                threads: int = 1, start: float | None = None, end: float | None = None
                ) -> DecodedClip:
    """Decode ``n_frames`` frames at ``fps`` and the matching audio window of a video file.

    ``start``/``end``: the clip is the window ``[start, end)`` of the file: decoding
    seeks to the key frame before ``start`` (nothing earlier is decoded), the grid
    starts at ``start``, and nothing at or after ``end`` is taken (a window shorter
    than the grid is padded, as a short file is).  A window that starts after the
    file ends, or ends well after it, raises ``window_past_end``.

    ``threads``: FFmpeg decoder threads.  One by default: jobs run clips in parallel
    (one worker per core), and on short clips FFmpeg's frame threads cost more than
    they give and fight the other workers for the cores (``bin/bench``'s ingest
    rows run with one)."""
    with _open(path) as container:
        if not container.streams.video:
            kind = "audio only" if container.streams.audio else "no streams"
            raise MediaError("no_video_stream", f"{path.name} has no video stream ({kind})")
        vstream = container.streams.video[0]
        if threads != 1:
            vstream.thread_type = "AUTO"
        vstream.codec_context.thread_count = threads
        astream = container.streams.audio[0] if container.streams.audio else None
        src_fps = float(vstream.average_rate) if vstream.average_rate else None
        duration = _duration(container, vstream)
        if start is not None or end is not None:
            start = start or 0.0
            _check_window(path, start, end, duration)
            _seek(container, start)
        sampler = _GridSampler(n_frames, fps, size, src_fps, start, end)
        audio = _AudioCollector(start) if astream is not None else None
        needed = _window_samples(n_frames, fps)
        if end is not None:  # the window's audio only; fit_audio pads the rest
            needed = min(needed, int(round((end - (start or 0.0)) * AUDIO_RATE)))
        _demux(container, path, sampler, [s for s in (vstream, astream) if s is not None],
               audio, needed)
        padded = sampler.pad()
        return DecodedClip(
            frames=np.stack(sampler.targets[:n_frames]),
            audio=_audio_window(audio, needed, _window_samples(n_frames, fps)),
            fps=src_fps,
            width=vstream.codec_context.width,
            height=vstream.codec_context.height,
            duration_s=_span(duration, start, end),
            n_frames=len(sampler.distinct),
            padded=padded,
            rotation=sampler.rotation,
        )


WINDOW_SLACK_S = 0.5  # a window may end this much after the file (rounded end times)


def _check_window(path: Path, start: float, end: float | None, duration: float | None
                  ) -> None:
    if end is not None and end <= start:
        raise MediaError("bad_window", f"{path.name}: window [{start:g}, {end:g}) is empty")
    if duration is None:
        return
    if start >= duration or (end is not None and end > duration + WINDOW_SLACK_S):
        raise MediaError("window_past_end", f"{path.name}: window [{start:g}, "
                         f"{'' if end is None else f'{end:g}'}) lies past the file's end "
                         f"({duration:.2f} s)")


def _seek(container: av.container.InputContainer, start: float) -> None:
    """To the key frame at or before ``start``; a file that cannot seek is decoded
    from its beginning (the frames before the window are passed over)."""
    if start <= 0:
        return
    try:
        container.seek(int(start * av.time_base), backward=True, any_frame=False)
    except av.FFmpegError:
        pass


def _span(duration: float | None, start: float | None, end: float | None) -> float | None:
    """The clip's duration: the file's, or its window's within the file."""
    if start is None or duration is None:
        return duration
    return max(0.0, min(duration, end if end is not None else duration) - start)


def clip_waveform(source_uri: str, class_name: str, clip_id: str, seconds: float
                  ) -> np.ndarray | None:
    """The clip's audio window, decoded again from its source (a video file, a window
    of one (:func:`vida.keys.with_window`), or the study layout's
    ``Audio/<class>/<clip>.wav`` beside an ``RGB/<class>/<clip>`` folder)."""
    file, start, end = split_window(source_uri)
    path = Path(file)
    if path.is_dir():
        path = study_audio_path(file, class_name, clip_id)
    if path is None or not path.exists():
        return None
    span = seconds if end is None else min(seconds, end - (start or 0.0))
    wave = decode_audio(path, seconds=span, start=start)
    if wave is None or wave.size == 0:
        return None
    return fit_audio(wave[:int(round(span * AUDIO_RATE))], int(round(seconds * AUDIO_RATE)))


def study_audio_path(source_uri: str, class_name: str, clip_id: str) -> Path | None:
    """The study layout's ``Audio/<class>/<clip>.wav`` beside an ``RGB/<class>/<clip>``
    frame folder, where it exists."""
    path = Path(source_uri).parents[2] / "Audio" / class_name / f"{clip_id}.wav"
    return path if path.exists() else None
