#!/usr/bin/env python
"""Ingest throughput and memory: clips/s and peak RSS at two dataset sizes.

    .venv/bin/python bin/bench_ingest.py [--sizes 20,80] [--workers 2]

Peak memory must not grow with the number of clips (ingest streams); the table
shows both sizes side by side.  Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.media_factory import tone, write_video  # noqa: E402


def make_videos(folder: Path, n: int) -> None:
    for i in range(n):
        cls = folder / f"class{i % 4}"
        cls.mkdir(parents=True, exist_ok=True)
        write_video(cls / f"clip{i:04d}.mp4", size=(320, 240), n_frames=90,
                    audio=tone(3, 16000, freq=150 + 10 * i))


def run(n: int, workers: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        make_videos(tmp_path / "videos", n)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vida.cli", "ingest", str(tmp_path / "videos"),
                        "--workers", str(workers), "--no-progress"], cwd=tmp_path, check=True,
                       stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return n / elapsed, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="20,80")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"{'clips':>6} {'clips/s':>8} {'peak RSS of a process (MB)':>28}")
    for n in (int(s) for s in args.sizes.split(",")):
        rate, peak = run(n, args.workers)
        print(f"{n:>6} {rate:>8.2f} {peak:>28.0f}")


if __name__ == "__main__":
    main()
