"""VIDA at the study's scale: ``bin/bench --only scale`` (this module does the work).

Study-shaped features (T = 18 frames; rgb and flow 768-d, audio 128-d: 120 KB a clip,
plus a 128-d condition with its mask for CAFMap) of 20 classes are written straight
into sealed shards by two processes and committed as the legacy import commits
them (clips rows with their shards), so that 200,000 clips take minutes, not hours.
Rows, each measured on this machine:

* one classifier training at 2,000, 20,000 and 60,000 clips, through the CLI
  (``vida-batch train classifier --epochs 1``): peak RSS and wall time; and, in a
  process of its own, the same training's parts: seconds to load its sets, seconds
  per epoch, and beside it one epoch of the bare torch loop over one in-memory
  tensor of the same standardised features (what the training's per-batch
  gathering costs);
* a CAFMap experiment with 2 workers (``vida-batch experiment cafmap``): peak RSS and
  PSS of the whole process tree, sampled while it runs;
* a streamed training past the memory budget (``--memory-budget 1``): peak RSS and
  clips/s;
* reads of the three sets through ``FeatureStore.read_sets``, cold (a new store
  object) and warm (the same again), against a plain ``read()`` of the same shard
  files, all with the files in the OS cache; into memory already mapped, and into
  new memory against a plain read into new memory.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STUDY = {"legacy/rgb": (18, 768), "legacy/flow": (18, 768), "legacy/audio": (18, 128),
         "legacy/condition": (18, 128)}
CLASSES = 20
CLIPS_PER_TASK = 2048
TRAIN_ARGS = ["--rgb", "legacy/rgb", "--flow", "legacy/flow", "--audio", "legacy/audio"]


def _split(i: int) -> str:
    return "train" if i % 20 < 14 else ("val" if i % 20 < 17 else "test")


def _write_range(root: str, layouts: list, span: tuple[int, int]) -> list:
    """Clips ``span`` of the synthetic study set, sealed 256 a shard (in a worker)."""
    from vida.clock import utcnow
    from vida.jobs.data.ingest_map import CLIP_KEY
    from vida.store.shards import ShardBundle

    lo, hi, per_class = span
    rng = np.random.default_rng(lo)
    patterns = {name: np.random.default_rng([c, len(name)]).standard_normal(
        (CLASSES, *shape)).astype(np.float32) for c, (name, shape) in enumerate(STUDY.items())}
    writer, sealed = ShardBundle(Path(root), layouts), []
    for i in range(lo, hi):  # in clip_key order, as the legacy import writes
        cls = i // per_class
        key = f"class{cls:02d}/clip{i:07d}"
        arrays = {name: rng.standard_normal(shape, dtype=np.float32) * 2 + patterns[name][cls]
                  for name, shape in STUDY.items()}
        row = {"clip_key": key, "class_name": f"class{cls:02d}", "clip_id": f"clip{i:07d}",
               "split": _split(i), "source_uri": "bench", "status": "ok",
               "ingested_at": utcnow()}
        mask = {"legacy/condition": {"mask": rng.random(18) < 0.6}}
        writer.add(key, arrays, extras=mask, records=[("clips", row, CLIP_KEY)])
        if writer.pending >= 256:
            sealed.append(writer.seal())
    sealed.append(writer.seal())
    return sealed


def write_study_store(folder: Path, n: int, workers: int = 2) -> float:
    """A catalog and store of ``n`` synthetic study-shaped clips; returns seconds."""
    from vida import open_catalog
    from vida.store import FeatureStore
    from vida.store.shards import SetLayout
    from vida.store.writers import commit_sealed

    start = time.perf_counter()
    catalog = open_catalog(folder / "catalog.db", create=True)
    store = FeatureStore(catalog, folder / "store")
    layouts = []
    for name, shape in STUDY.items():
        info = store.register(name, modality=name.split("/")[1], encoder="bench", shape=shape)
        layouts.append(SetLayout.of(info))
    n -= n % CLASSES
    spans = [(i, min(i + CLIPS_PER_TASK, n), n // CLASSES)
             for i in range(0, n, CLIPS_PER_TASK)]
    with ProcessPoolExecutor(workers) as pool:
        for bundles in pool.map(partial(_write_range, str(store.root), layouts), spans):
            for bundle in bundles:
                commit_sealed(catalog, bundle)
    catalog.dispose()
    return time.perf_counter() - start


def vida_batch(folder: Path, *args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "vida-batch"), "--catalog",
            str(folder / "catalog.db"), "--store", str(folder / "store"), *args]


class TreeMemory:
    """Peak RSS and PSS of a process and its descendants, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_rss, self.peak_pss = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.2):
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            rss = pss = 0
            for p in procs:
                try:
                    info = p.memory_full_info()
                except psutil.Error:
                    continue
                rss, pss = rss + info.rss, pss + info.pss
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {"peak_rss_gb": self.peak_rss / 1e9, "peak_pss_gb": self.peak_pss / 1e9}


def run_measured(cmd: list[str], cwd: Path) -> dict:
    """A command's wall time and its process tree's peak memory."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    memory = TreeMemory(proc.pid)
    out, err = proc.communicate()
    found = memory.stop()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    return {"seconds": time.perf_counter() - start, **found, "stdout": out}


def feature_gb(n: int, sets: tuple[str, ...] = ("legacy/rgb", "legacy/flow",
                                                "legacy/audio")) -> float:
    return n * sum(int(np.prod(STUDY[s])) * 4 for s in sets) / 1e9


# -- the parts of one training, in a process of its own -----------------------

def training_parts(folder: str, holding: str, arch: str) -> dict:
    """Load seconds, epoch seconds and peak RSS of one classifier training's parts,
    then one epoch of the bare loop over one in-memory tensor beside it."""
    import torch

    from vida import open_catalog
    from vida.jobs.training.classifier import ClassifierSpec, plan_classifier
    from vida.jobs.training.common import fit, seed_everything
    from vida.jobs.training.inputs import ChunkOrder, Standardizer, batches, load_blocks
    from vida.models import build_classifier
    from vida.store import FeatureStore

    catalog = open_catalog(Path(folder) / "catalog.db")
    store = FeatureStore(catalog, Path(folder) / "store")
    spec = ClassifierSpec(arch=arch, rgb="legacy/rgb", flow="legacy/flow", audio="legacy/audio",
                          epochs=1)
    task = plan_classifier(catalog, store, "SELECT clip_key, class_name, split FROM clips",
                           spec, threads=0)
    catalog.dispose()
    start = time.perf_counter()
    x = {s: load_blocks(p, stream=holding == "stream") for s, p in task.inputs.items()}
    load_s = time.perf_counter() - start
    g = seed_everything(0)
    norm = Standardizer.fit_blocks(x["train"])
    model = build_classifier(arch, x["train"].width, CLASSES, None)
    order = ChunkOrder(task.inputs["train"][0], 0) if holding == "stream" else None
    marks = [time.perf_counter()]
    fit(model, batches(x["train"], task.labels["train"], spec.batch_size, True, norm=norm,
                       generator=g, sampler=order),
        batches(x["val"], task.labels["val"], 256, False, norm=norm),
        torch.nn.CrossEntropyLoss(), epochs=1, lr=spec.lr,
        score=lambda m, d: {"top1": 0.0}, better=lambda a, b: False,
        on_epoch=lambda *a: marks.append(time.perf_counter()))
    out = {"load_s": load_s, "epoch_s": marks[1] - marks[0], "train_clips": x["train"].n,
           "peak_rss_gb": _peak_rss_gb()}
    if holding == "memory":
        out["bare_epoch_s"] = _bare_epoch(x["train"].whole(norm), task.labels["train"],
                                          arch, spec.batch_size, spec.lr)
    return out


def _bare_epoch(x: np.ndarray, y: np.ndarray, arch: str, batch: int, lr: float) -> float:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from vida.models import build_classifier

    model = build_classifier(arch, x.shape[-1], CLASSES, None)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for xb, yb in DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                             batch_size=batch, shuffle=True):
        optimiser.zero_grad()
        loss_fn(model(xb), yb).backward()
        optimiser.step()
    return time.perf_counter() - start


def _peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def measure_parts(folder: Path, holding: str, arch: str = "lstm") -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'bin')!r}); "
            f"import bench_scale as b; print(json.dumps(b.training_parts("
            f"{str(folder)!r}, {holding!r}, {arch!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the rows ------------------------------------------------------------------

def training_row(tmp: Path, n: int) -> dict:
    folder = tmp / f"study-{n}"
    write_s = write_study_store(folder, n)
    cli = run_measured(vida_batch(folder, "train", "classifier", "--epochs", "1",
                                  *TRAIN_ARGS, "--runs", str(folder / "runs")), folder)
    cli.pop("stdout")
    parts = measure_parts(folder, "memory")
    return {"clips": n, "features_gb": feature_gb(n), "write_s": write_s, "cli": cli,
            "parts": parts}


def experiment_row(tmp: Path, n: int, workers: int = 2) -> dict:
    folder = tmp / f"study-{n}"
    if not (folder / "catalog.db").exists():
        write_study_store(folder, n)
    args = ["experiment", "cafmap", "--condition", "legacy/condition", *TRAIN_ARGS,
            "--seeds", "1", "--epochs", "1", "--generator-epochs", "1", "--cross-fit", "0",
            "--labels-per-class", "", "--generator-hidden", "64", "--workers", str(workers),
            "--no-progress", "--runs", str(folder / "runs")]
    found = run_measured(vida_batch(folder, *args), folder)
    counts = re.search(r"(\d+) classifier, (\d+) test-only", found["stdout"])
    trainings = int(counts.group(1)) if counts else 0
    found.pop("stdout")
    return {"clips": n, "workers": workers, "features_gb": feature_gb(n, tuple(STUDY)),
            "classifier_trainings": trainings, **found}


def streamed_row(tmp: Path, n: int) -> dict:
    folder = tmp / f"study-{n}"
    write_s = write_study_store(folder, n)
    cli = run_measured(vida_batch(folder, "train", "classifier", "--epochs", "1", "--arch",
                                  "mlp", "--memory-budget", "1", *TRAIN_ARGS,
                                  "--runs", str(folder / "runs")), folder)
    cli.pop("stdout")
    parts = measure_parts(folder, "stream", arch="mlp")
    return {"clips": n, "features_gb": feature_gb(n), "write_s": write_s, "cli": cli,
            "parts": parts, "train_clips_per_s": parts["train_clips"] / parts["epoch_s"]}


def reads_row(tmp: Path, n: int, repeats: int) -> dict:
    """Reads of one set of clips, all with the shard files in the OS cache, side by
    side: a plain ``read()`` of the files, each into a buffer of its size that the
    allocator reuses (and the CPU's cache may hold), and into one array of them all
    already in memory, as the store fills a set's arrays; the store's reads into
    arrays already in memory, cold (a new store object: shards opened, chunk indexes
    and checksums read) and warm (the same store again); and both into new memory,
    where the kernel's page faults cost more than the copy."""
    from vida import open_catalog
    from vida.store import FeatureStore

    folder = tmp / f"study-{n}"
    if not (folder / "catalog.db").exists():
        write_study_store(folder, n)
    catalog = open_catalog(folder / "catalog.db")
    keys = catalog.sql("SELECT clip_key FROM clips ORDER BY clip_key")["clip_key"].tolist()
    sets = ["legacy/rgb", "legacy/flow", "legacy/audio"]
    files = sorted(p for s in sets for p in (folder / "store" / s).rglob("*.h5"))
    total = sum(p.stat().st_size for p in files)
    warm_store = FeatureStore(catalog, folder / "store")
    arrays = warm_store.read_sets(sets, keys)
    feature_bytes = sum(a.nbytes for a in arrays.values())

    def plain() -> None:
        for path in files:
            with open(path, "rb") as fh:
                fh.read()

    def plain_into_new() -> None:
        out = memoryview(bytearray(total))
        at = 0
        for path in files:
            with open(path, "rb", buffering=0) as fh:
                at += fh.readinto(out[at:])

    in_memory = memoryview(bytearray(total))  # faulted in once, here

    def plain_into_memory() -> None:
        at = 0
        for path in files:
            with open(path, "rb", buffering=0) as fh:
                at += fh.readinto(in_memory[at:])

    def cold(into: dict | None) -> None:
        store = FeatureStore(catalog, folder / "store")
        store.read_sets(sets, keys, into=into)
        store.close()

    plain()  # the files into the OS cache
    runs = {_PLAIN: plain, _PLAIN_MEMORY: plain_into_memory, _PLAIN_NEW: plain_into_new,
            "FeatureStore.read_sets, cold (a new store), into arrays in memory":
                partial(cold, arrays),
            "FeatureStore.read_sets, warm (the same store again), into the same arrays":
                partial(warm_store.read_sets, sets, keys, into=arrays),
            "FeatureStore.read_sets, cold, into new arrays": partial(cold, None)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    rates = {name: {"gb_per_s": (total if name.startswith("plain") else feature_bytes)
                    / 1e9 / statistics.median(t), "min_s": min(t), "max_s": max(t)}
             for name, t in times.items()}
    for d in rates.values():
        d["share_of_plain"] = d["gb_per_s"] / rates[_PLAIN]["gb_per_s"]
        d["share_of_plain_into_memory"] = d["gb_per_s"] / rates[_PLAIN_MEMORY]["gb_per_s"]
        d["share_of_plain_into_new"] = d["gb_per_s"] / rates[_PLAIN_NEW]["gb_per_s"]
    return {"clips": n, "file_gb": total / 1e9, "feature_gb": feature_bytes / 1e9,
            "rates": rates}


_PLAIN = "plain read() of the shard files"
_PLAIN_MEMORY = "plain read of the shard files into one array already in memory"
_PLAIN_NEW = "plain read of the shard files into one new buffer"


def bench_scale(tmp: Path, repeats: int, sizes: tuple[int, ...] = (2_000, 20_000, 60_000),
                experiment_sizes: tuple[int, ...] = (20_000,), streamed: int = 200_000) -> dict:
    out: dict = {"training": [], "experiment": []}
    for n in sizes:
        print(f"  scale: one training at {n:,} clips ...", flush=True)
        out["training"].append(training_row(tmp, n))
        if n == 20_000 or n == sizes[-1] and 20_000 not in sizes:
            print(f"  scale: reads at {n:,} clips ...", flush=True)
            out["reads"] = reads_row(tmp, n, repeats)
    for n in experiment_sizes:
        print(f"  scale: a CAFMap experiment at {n:,} clips, 2 workers ...", flush=True)
        out["experiment"].append(experiment_row(tmp, n))
    for n in {*sizes, *experiment_sizes}:  # room on the disk for the streamed set
        subprocess.run(["rm", "-rf", str(tmp / f"study-{n}")], check=True)
    if streamed:
        print(f"  scale: a streamed training at {streamed:,} clips ...", flush=True)
        out["streamed"] = streamed_row(tmp, streamed)
    return out


def markdown(r: dict) -> str:
    lines = ["| measure | value |", "| --- | --- |"]
    for t in r.get("training", []):
        c, p = t["cli"], t["parts"]
        lines.append(
            f"| one classifier training (LSTM, 1 epoch), {t['clips']:,} clips, "
            f"{t['features_gb']:.2f} GB of features | peak RSS {c['peak_rss_gb']:.2f} GB "
            f"({c['peak_rss_gb'] / t['features_gb']:.2f}x the features), {c['seconds']:.0f} s "
            f"through the CLI; load {p['load_s']:.1f} s, epoch {p['epoch_s']:.1f} s, the bare "
            f"loop over one in-memory tensor {p['bare_epoch_s']:.1f} s |")
    for e in r.get("experiment", []):
        lines.append(
            f"| CAFMap experiment, {e['clips']:,} clips ({e['features_gb']:.2f} GB of sets), "
            f"{e['workers']} workers, {e['classifier_trainings']} classifier trainings | "
            f"process tree peak PSS {e['peak_pss_gb']:.2f} GB (RSS summed over processes "
            f"{e['peak_rss_gb']:.2f} GB, shared pages counted in each), {e['seconds']:.0f} s |")
    if "streamed" in r:
        s = r["streamed"]
        lines.append(
            f"| streamed training (MLP, 1 epoch, --memory-budget 1), {s['clips']:,} clips, "
            f"{s['features_gb']:.1f} GB of features | peak RSS {s['cli']['peak_rss_gb']:.2f} GB,"
            f" {s['train_clips_per_s']:,.0f} train clips/s, {s['cli']['seconds']:.0f} s "
            f"through the CLI |")
    if "reads" in r:
        d = r["reads"]
        for name, v in d["rates"].items():
            lines.append(f"| reads of {d['clips']:,} clips' rgb+flow+audio, {name} | "
                         f"{v['gb_per_s']:.2f} GB/s ({v['share_of_plain']:.0%} of plain "
                         f"read(), {v['share_of_plain_into_memory']:.0%} of plain read into "
                         f"memory, {v['share_of_plain_into_new']:.0%} of plain read into "
                         "new memory) |")
    return "\n".join(lines)
