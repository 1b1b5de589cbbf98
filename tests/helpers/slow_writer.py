"""A feature writer that commits small shards slowly, for crash and lock tests.

Usage: python -m tests.helpers.slow_writer CATALOG STORE N_ROWS ROWS_PER_SHARD SLEEP_S
Prints "committed <rows>" after every sealed-and-committed shard.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from vida import open_catalog
from vida.store import FeatureStore


def main() -> None:
    catalog_path, store_root, n_rows, per_shard, sleep_s = sys.argv[1:6]
    store = FeatureStore(open_catalog(catalog_path, create=True), store_root)
    store.register("rgb/slow", modality="rgb", encoder="test", shape=(18, 32))
    done = set(store.keys("rgb/slow"))
    writer = store.writer("rgb/slow", rows_per_shard=int(per_shard))
    for i in range(int(n_rows)):
        key = f"cls/clip{i:04d}"
        if key in done:  # resumable: skip what is already committed
            continue
        writer.add(key, np.full((18, 32), i, dtype=np.float32))
        if writer.committed and writer.pending == 0:
            print(f"committed {writer.committed}", flush=True)
        time.sleep(float(sleep_s))
    writer.close()
    print(f"finished {writer.committed}", flush=True)


if __name__ == "__main__":
    main()
