"""The original study's frame-folder layout: ``RGB/<class>/<clip>/frame_*.jpg``.

Frames there are already sampled (18 at 6 fps); they are read in name order,
resized to the working size, and padded by repeating the last one when short.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vida.media.decode import MediaError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_frames(
    folder: Path, n_frames: int = 18, size: int = 128
) -> tuple[np.ndarray, int, int, int]:
    """``(frames [T, S, S, 3] RGB uint8, frames found, source width, source height)``."""
    files = frame_files(folder)
    if not files:
        raise MediaError("no_frames", f"{folder} holds no frame images")
    frames = []
    width = height = 0
    for path in files[:n_frames]:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise MediaError("bad_image", f"{path} is not a readable image")
        height, width = image.shape[:2]
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    found = len(frames)
    while len(frames) < n_frames:
        frames.append(frames[-1])
    return np.stack(frames), found, width, height
