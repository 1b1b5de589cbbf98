"""The confusion-matrix PNG: a figure reused across trainings gives the bytes a new
figure gives, whatever was drawn on it before."""

from __future__ import annotations

import threading

import numpy as np

from vida.jobs.core.confusion import confusion_png

CLASSES = ["bouncing", "hammering", "spinning+fan", "dropping+metal"]


def _matrices(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [rng.integers(0, 12, (len(CLASSES), len(CLASSES))) for _ in range(n)]
    out.append(np.diag([5, 0, 7, 3]))  # zeros off the diagonal, an empty class
    return out


def test_a_reused_figure_draws_the_bytes_of_a_new_one():
    matrices = _matrices(0, 4)
    fresh = [confusion_png(m, CLASSES, f"t{i}", reuse=False) for i, m in enumerate(matrices)]
    reused = [confusion_png(m, CLASSES, f"t{i}") for i, m in enumerate(matrices)]
    assert len(set(fresh)) == len(fresh)  # the matrices differ, so do their pictures
    assert reused == fresh
    again = confusion_png(matrices[0], CLASSES[::-1], "other classes")  # another figure
    assert again != fresh[0]
    assert confusion_png(matrices[1], CLASSES, "t1") == fresh[1]


def test_threads_drawing_at_once_each_get_their_own_picture():
    matrices = _matrices(1, 6)
    expected = [confusion_png(m, CLASSES, f"t{i}", reuse=False) for i, m in enumerate(matrices)]
    got: dict[int, bytes] = {}

    def draw(i: int) -> None:
        for _ in range(3):
            got[i] = confusion_png(matrices[i], CLASSES, f"t{i}")

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(len(matrices))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [got[i] for i in range(len(matrices))] == expected
