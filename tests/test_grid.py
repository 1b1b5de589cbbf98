"""One decoding on a feature set's grid for ingest, encode and CAFMap: a video file
and a folder of frame images (the study's layout, its audio beside it) give the
same T x S x S frames and T / F seconds of audio."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.media_factory import tone, write_audio_only, write_video
from vida.media.decode import AUDIO_RATE, MediaError, study_audio_path
from vida.media.grid import decode_on_grid

T, FPS, SIZE = 6, 2.0, 32  # 3 s on the grid


def _frame_folder(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        image = np.full((48, 64, 3), 20 * i, np.uint8)
        cv2.imwrite(str(folder / f"{i:04d}.png"), image)
    return folder


def test_a_video_file_gives_its_frames_and_audio_on_the_grid(tmp_path):
    video = write_video(tmp_path / "v.mp4", n_frames=90, audio=tone(3, AUDIO_RATE))
    clip = decode_on_grid(video, T, FPS, SIZE)
    assert clip.frames.shape == (T, SIZE, SIZE, 3) and clip.frames.dtype == np.uint8
    assert clip.audio is not None and clip.audio.shape == (int(T / FPS * AUDIO_RATE),)
    assert not clip.padded and clip.width == 64 and clip.height == 48


def test_a_frame_folder_gives_its_frames_its_audio_and_the_grids_facts(tmp_path):
    root = tmp_path / "study"
    folder = _frame_folder(root / "RGB" / "hammering" / "c1", 4)  # short: padded
    audio = root / "Audio" / "hammering" / "c1.wav"
    audio.parent.mkdir(parents=True)
    write_audio_only(audio.with_suffix(".m4a"), seconds=3.0).rename(audio)
    found = study_audio_path(str(folder), "hammering", "c1")
    assert found == audio
    clip = decode_on_grid(folder, T, FPS, SIZE, found)
    assert clip.frames.shape == (T, SIZE, SIZE, 3)
    assert clip.padded and clip.n_frames == 4 and clip.fps == FPS
    assert clip.duration_s == pytest.approx(4 / FPS)
    assert (clip.frames[-1] == clip.frames[3]).all()  # the last frame repeated
    assert clip.audio is not None and clip.audio.shape == (int(T / FPS * AUDIO_RATE),)
    assert decode_on_grid(folder, T, FPS, SIZE).audio is None  # no audio file named
    assert study_audio_path(str(folder), "hammering", "other") is None


def test_a_named_audio_file_that_is_missing_is_a_media_error(tmp_path):
    folder = _frame_folder(tmp_path / "f", T)
    with pytest.raises(MediaError):
        decode_on_grid(folder, T, FPS, SIZE, tmp_path / "missing.wav")
