"""Drawing the frames and making the sound of one synthetic clip.

Every clip has a few random parameters (colours, sizes, positions, speeds, phases,
noise levels).  The motion defines *event times* (impacts, strikes, contacts) or a
*speed curve* (rotation, sliding, breathing); the sound is made from the same
events or curve, so what is heard is in time with what is seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.signal import butter, sosfilt

FPS = 30
SECONDS = 3.0
SIZE = 96
RATE = 16_000


@dataclass
class Scene:
    """Per-clip random parameters."""

    visual: str
    color: tuple[int, int, int]
    background: tuple[int, int, int]
    period: float  # seconds between events, or of one oscillation
    phase: float  # 0..1 of a period
    x: float  # horizontal position, 0..1
    scale: float  # object size factor
    speed_wobble: float  # relative speed modulation (spin)
    pixel_noise: float
    audio_noise: float
    pitch: float  # base frequency of the sound, Hz
    loudness: float
    cue: str | None = None  # the material struck (block, plate): "wood" or "metal"


BLOCK_COLORS = {None: (90, 60, 30), "wood": (90, 60, 30), "metal": (150, 160, 180)}


def sample_scene(visual: str, color: tuple[int, int, int], rng: np.random.Generator,
                 cue: str | None = None) -> Scene:
    dark = rng.integers(0, 90, size=3)
    return Scene(
        visual=visual, color=color, background=tuple(int(c) for c in dark),
        period=float(rng.uniform(0.45, 1.0)), phase=float(rng.uniform(0, 1)),
        x=float(rng.uniform(0.3, 0.7)), scale=float(rng.uniform(0.8, 1.25)),
        speed_wobble=float(rng.uniform(0.2, 0.6)), pixel_noise=float(rng.uniform(2, 12)),
        audio_noise=float(rng.uniform(0.002, 0.02)), pitch=float(rng.uniform(0.8, 1.25)),
        loudness=float(rng.uniform(0.3, 0.8)), cue=cue,
    )


def event_times(scene: Scene) -> np.ndarray:
    """Moments of contact (bounce, strike, tap) in seconds."""
    first = scene.phase * scene.period
    return np.arange(first, SECONDS, scene.period)


def spin_angle_and_speed(scene: Scene, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angle (rad) and relative speed (1 = mean) of a rotating bar at times t."""
    w0 = 2 * np.pi / scene.period * 0.35
    speed = 1 + scene.speed_wobble * np.sin(2 * np.pi * t / SECONDS + 2 * np.pi * scene.phase)
    angle = w0 * (t + scene.speed_wobble * SECONDS / (2 * np.pi)
                  * (np.cos(2 * np.pi * scene.phase)
                     - np.cos(2 * np.pi * t / SECONDS + 2 * np.pi * scene.phase)))
    return angle, speed


def oscillation(scene: Scene, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position in -1..1 and speed magnitude 0..1 of a sliding/breathing motion."""
    w = 2 * np.pi / (scene.period * 1.6)
    pos = np.sin(w * t + 2 * np.pi * scene.phase)
    return pos, np.abs(np.cos(w * t + 2 * np.pi * scene.phase))


def draw_frame(scene: Scene, t: float, rng: np.random.Generator) -> np.ndarray:
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = scene.background
    color = tuple(int(c) for c in scene.color)
    s, cx = scene.scale, int(scene.x * SIZE)
    floor = int(SIZE * 0.85)
    cv2.line(img, (0, floor), (SIZE, floor), (120, 120, 120), 2)
    if scene.visual == "bounce":
        u = ((t - scene.phase * scene.period) / scene.period) % 1.0
        height = 4 * u * (1 - u)  # a parabola between impacts
        r = int(6 * s)
        cy = int(floor - r - height * SIZE * 0.55)
        if scene.cue:  # the plate the ball lands on
            cv2.rectangle(img, (cx - 10, floor - 4), (cx + 10, floor), BLOCK_COLORS[scene.cue],
                          -1)
        cv2.circle(img, (cx, cy), r, color, -1)
    elif scene.visual == "strike":
        u = ((t - scene.phase * scene.period) / scene.period) % 1.0
        # down on the block at each strike (u = 0), then raised again
        angle = np.pi / 2 * (1 - u) ** 0.3 if u > 0.05 else 0.0
        pivot = (int(SIZE * 0.2), floor - 4)
        length = int(SIZE * 0.5 * s)
        end = (int(pivot[0] + length * np.cos(angle)), int(pivot[1] - length * np.sin(angle)))
        cv2.line(img, pivot, end, color, max(2, int(3 * s)))
        cv2.rectangle(img, (end[0] - 5, end[1] - 4), (end[0] + 5, end[1] + 4), color, -1)
        cv2.rectangle(img, (int(SIZE * 0.6), floor - 6), (int(SIZE * 0.8), floor),
                      BLOCK_COLORS[scene.cue], -1)
    elif scene.visual == "spin":
        angle, _ = spin_angle_and_speed(scene, np.array([t]))
        c = (cx, SIZE // 2)
        length = SIZE * 0.32 * s
        dx, dy = length * np.cos(angle[0]), length * np.sin(angle[0])
        cv2.line(img, (int(c[0] - dx), int(c[1] - dy)), (int(c[0] + dx), int(c[1] + dy)),
                 color, max(3, int(4 * s)))
        cv2.circle(img, c, 4, (200, 200, 200), -1)
    elif scene.visual == "slide":
        pos, _ = oscillation(scene, np.array([t]))
        x = int(SIZE / 2 + pos[0] * SIZE * 0.25)
        w, h = int(14 * s), int(8 * s)
        cv2.rectangle(img, (x - w, floor - 2 * h), (x + w, floor - h), color, -1)
        cv2.rectangle(img, (int(SIZE * 0.1), floor - h), (int(SIZE * 0.9), floor), (90, 60, 30),
                      -1)
    elif scene.visual == "breathe":
        pos, _ = oscillation(scene, np.array([t]))
        r = int((10 + 7 * pos[0]) * s)
        cv2.circle(img, (cx, SIZE // 2), max(3, r), color, -1)
    elif scene.visual == "tap":
        u = ((t - scene.phase * scene.period) / scene.period) % 1.0
        gap = int(SIZE * 0.22 * min(u, 1 - u) * 2)  # closes to 0 at each contact
        w = int(9 * s)
        cy = SIZE // 2
        cv2.rectangle(img, (cx - gap - 2 * w, cy - w), (cx - gap, cy + w), color, -1)
        cv2.rectangle(img, (cx + gap, cy - w), (cx + gap + 2 * w, cy + w), color, -1)
    else:
        raise ValueError(f"unknown visual {scene.visual!r}")
    noise = rng.normal(0, scene.pixel_noise, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _impulse_train(times: np.ndarray, n: int, make: Callable[[], np.ndarray]) -> np.ndarray:
    out = np.zeros(n, np.float64)
    for t in times:
        start = int(t * RATE)
        if start >= n:
            continue
        piece = make()
        end = min(n, start + len(piece))
        out[start:end] += piece[: end - start]
    return out


def make_audio(scene: Scene, sound: str, rng: np.random.Generator) -> np.ndarray:
    n = int(SECONDS * RATE)
    t = np.arange(n) / RATE
    if sound == "thud":
        d = np.arange(int(0.25 * RATE)) / RATE
        f = 70 * scene.pitch

        def thud() -> np.ndarray:
            body = np.sin(2 * np.pi * f * d) * np.exp(-d * 18)
            click = sosfilt(butter(2, 400, fs=RATE, output="sos"),
                            rng.normal(0, 1, len(d))) * np.exp(-d * 60)
            return body + 0.5 * click

        wave = _impulse_train(event_times(scene), n, thud)
    elif sound == "clang":
        d = np.arange(int(0.6 * RATE)) / RATE
        f0 = 520 * scene.pitch
        ratios = (1.0, 2.76, 5.40, 8.93)

        def clang() -> np.ndarray:
            return sum(np.sin(2 * np.pi * f0 * r * d) * np.exp(-d * (5 + 3 * i)) / (i + 1)
                       for i, r in enumerate(ratios))

        wave = _impulse_train(event_times(scene), n, clang)
    elif sound in ("hum", "whine"):
        _, speed = spin_angle_and_speed(scene, t)
        base = (120 if sound == "hum" else 1600) * scene.pitch
        phase = 2 * np.pi * np.cumsum(base * speed) / RATE
        wave = (np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase)) * 0.5
    elif sound == "hiss":
        _, speed = (oscillation(scene, t) if scene.visual in ("slide", "breathe")
                    else (None, np.ones(n)))
        band = butter(2, [1500 * scene.pitch, 4000 * scene.pitch], btype="band", fs=RATE,
                      output="sos")
        wave = sosfilt(band, rng.normal(0, 1, n)) * speed ** 2 * 2.5
    elif sound == "tick":
        d = np.arange(int(0.03 * RATE)) / RATE

        def tick() -> np.ndarray:
            return np.sin(2 * np.pi * 2500 * scene.pitch * d) * np.exp(-d * 200)

        wave = _impulse_train(event_times(scene), n, tick)
    else:
        raise ValueError(f"unknown sound {sound!r}")
    peak = np.max(np.abs(wave)) or 1.0
    wave = wave / peak * scene.loudness + rng.normal(0, scene.audio_noise, n)
    return np.clip(wave, -1, 1).astype(np.float32)
