"""A training's inputs held once: feature blocks side by side, standardised per batch.

A classifier's input is the concatenation of its sets (rgb, flow, audio) on the
last axis.  Concatenating, casting and standardising whole arrays made a training
hold its features three to four times over; here each split is a :class:`Blocks`,
one array (or one located stream) per set, read once, never copied whole:

* **in memory**: each set's rows are read straight into one float32 array, or
  taken from read-only maps of their shards in the experiment's scratch folder,
  which every training on the machine shares (:mod:`vida.store.shared`);
* **streamed**: past the memory budget, a block stays a :class:`Located` and a
  batch reads its rows from the store (chunk-shuffled order, :class:`ChunkOrder`).

A batch is gathered from the blocks and standardised in place
(:class:`Standardizer`: mean and std per dimension of the train rows, summed in the
same order as a whole-array ``mean``/``std`` does, so the numbers are the same bits
as standardising the concatenated array first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vida.errors import UsageError
from vida.store.dataset import chunk_blocks, chunk_shuffled
from vida.store.located import Located, read_rows
from vida.store.shared import SharedRows, shared_rows

# a block: in memory, in the machine's shared copies, or rows to read from the store
Source = np.ndarray | SharedRows | Located
_FIT_ROWS = 4096  # frames summed per step when fitting the standardizer


def source_rows(source: Source, index: np.ndarray | slice) -> np.ndarray:
    """Rows ``index`` of one block, as float32."""
    if isinstance(source, Located):
        rows = np.arange(len(source.keys))[index]
        return read_rows(source.subset(rows)).astype(np.float32, copy=False)
    if isinstance(source, SharedRows):
        return source.take(np.arange(len(source))[index])
    return np.asarray(source[index], dtype=np.float32)


@dataclass
class Blocks:
    """One split's input: blocks ``[n, T, d_i]`` whose concatenation on the last axis
    is the training's input."""

    sources: list[Source]
    widths: list[int]
    n: int
    steps: int  # T

    @classmethod
    def of(cls, sources: Sequence[Source]) -> Blocks:
        shapes = [_shape(s) for s in sources]
        if len({s[:2] for s in shapes}) != 1:
            names = [getattr(s, "name", "array") for s in sources]
            raise UsageError(f"feature sets {names} have different T: "
                             f"{sorted({s[1] for s in shapes})}")
        return cls(list(sources), [s[2] for s in shapes], shapes[0][0], shapes[0][1])

    @property
    def width(self) -> int:
        return sum(self.widths)

    @property
    def streamed(self) -> bool:
        return any(isinstance(s, Located) for s in self.sources)

    def rows(self, index: np.ndarray | slice) -> np.ndarray:
        """The concatenated input of rows ``index``: ``[k, T, sum d]`` float32."""
        first = source_rows(self.sources[0], index)
        if len(self.sources) == 1:
            return np.array(first, dtype=np.float32, copy=True)
        out = np.empty((len(first), self.steps, self.width), dtype=np.float32)
        start = 0
        for i, (source, width) in enumerate(zip(self.sources, self.widths, strict=True)):
            out[..., start:start + width] = first if i == 0 else source_rows(source, index)
            start += width
        return out

    def whole(self, norm: Standardizer | None = None, clips: int = 1024) -> np.ndarray:
        """The whole split concatenated (and standardised): one array, filled in steps."""
        out = np.empty((self.n, self.steps, self.width), dtype=np.float32)
        for i in range(0, self.n, clips):
            out[i:i + clips] = self.rows(slice(i, i + clips))
        if norm is not None:
            norm.apply_(out)
        return out

    def replaced(self, position: int, source: Source) -> Blocks:
        """These blocks with block ``position`` (e.g. -1, the audio) swapped."""
        sources = list(self.sources)
        sources[position] = source
        return Blocks.of(sources)


def _shape(source: Source) -> tuple[int, int, int]:
    if isinstance(source, Located):
        return (len(source.keys), *source.shape)
    if isinstance(source, SharedRows):
        return (len(source), *source.shape)
    return source.shape  # type: ignore[return-value]


@dataclass
class Standardizer:
    """Per-dimension mean/std from the training split, applied to every split."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        flat = x.reshape(-1, x.shape[-1])
        return cls(flat.mean(0), flat.std(0) + 1e-6)

    @classmethod
    def fit_blocks(cls, blocks: Blocks) -> Standardizer:
        """:meth:`fit` of the concatenated blocks without building it: each block's
        frames summed in the order numpy sums a whole array's axis 0 (row after row),
        a few thousand frames at a time, so that no copy of a block is made."""
        means, stds = [], []
        clips = max(1, _FIT_ROWS // max(blocks.steps, 1))
        for source in blocks.sources:
            parts = [slice(i, i + clips) for i in range(0, blocks.n, clips)]
            frames = blocks.n * blocks.steps
            mean = (_sum_rows(source, parts, None) / np.float32(frames)).astype(np.float32)
            var = _sum_rows(source, parts, mean) / np.float32(frames)
            means.append(mean)
            stds.append(np.sqrt(var).astype(np.float32))
        return cls(np.concatenate(means), np.concatenate(stds) + np.float32(1e-6))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def apply_(self, x: np.ndarray) -> np.ndarray:
        """Standardise ``x`` (float32) in place: the same bits as ``self(x)``."""
        np.subtract(x, self.mean, out=x)
        np.divide(x, self.std, out=x)
        return x

    def state(self) -> dict[str, torch.Tensor]:
        return {"mean": torch.from_numpy(self.mean.astype(np.float32)),
                "std": torch.from_numpy(self.std.astype(np.float32))}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> Standardizer:
        return cls(state["mean"].numpy(), state["std"].numpy())


def _sum_rows(source: Source, parts: list[slice], mean: np.ndarray | None) -> np.ndarray:
    """Sum over every frame of the block (of ``(x - mean)**2`` when ``mean`` is given),
    accumulated frame after frame as ``np.add.reduce(axis=0)`` does."""
    total = None
    for part in parts:
        rows = source_rows(source, part)
        rows = rows.reshape(-1, rows.shape[-1])
        if mean is not None:
            rows = rows - mean
            rows *= rows
        stacked = rows if total is None else np.concatenate([total[None], rows])
        total = np.add.reduce(stacked, axis=0)
    return total


class BlockBatches(Dataset):
    """Batches of (standardised input, target) gathered from blocks; the DataLoader
    asks for a whole batch at once (``__getitems__``)."""

    def __init__(self, x: Blocks, y: np.ndarray | Blocks, norm: Standardizer | None) -> None:
        self.x, self.y, self.norm = x, y, norm

    def __len__(self) -> int:
        return self.x.n

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        x = self.x.rows(index)
        if self.norm is not None:
            self.norm.apply_(x)
        y = self.y.rows(index) if isinstance(self.y, Blocks) else self.y[index]
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(y))


def _as_is(batch):
    return batch


class OnDevice:
    """Batches gathered by loader processes into pinned memory, copied to the device
    without waiting (the next batches are being gathered meanwhile)."""

    def __init__(self, loader: DataLoader, device: str) -> None:
        self.loader, self.device, self.dataset = loader, device, loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for xb, yb in self.loader:
            yield (xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True))


def batches(x: Blocks, y: np.ndarray | Blocks, batch_size: int, shuffle: bool, *,
            norm: Standardizer | None = None, generator: torch.Generator | None = None,
            device: str = "cpu", sampler: Sampler | None = None) -> DataLoader | OnDevice:
    """Batches of (x, y): on a GPU the whole split as one tensor on the device where
    it fits, otherwise gathered per batch (on a GPU by two loader processes, pinned
    and prefetched)."""
    on_device = _whole_on_device(x, y, norm, device)
    if on_device is not None:
        return DataLoader(on_device, batch_size=batch_size, shuffle=shuffle and sampler is None,
                          sampler=sampler, generator=generator)
    dataset = BlockBatches(x, y, norm)
    if device == "cpu":
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None,
                          sampler=sampler, generator=generator, collate_fn=_as_is)
    return OnDevice(DataLoader(dataset, batch_size=batch_size,
                               shuffle=shuffle and sampler is None, sampler=sampler,
                               generator=generator, collate_fn=_as_is, num_workers=2,
                               pin_memory=True, prefetch_factor=4), device)


def _whole_on_device(x: Blocks, y: np.ndarray | Blocks, norm: Standardizer | None,
                     device: str) -> Dataset | None:
    if device == "cpu" or not torch.cuda.is_available():
        return None
    need = x.n * x.steps * x.width * 4
    free, _ = torch.cuda.mem_get_info()
    if need > free // 2:
        return None
    from torch.utils.data import TensorDataset

    ys = to_device(y, None, device) if isinstance(y, Blocks) else torch.from_numpy(
        np.ascontiguousarray(y)).to(device)
    return TensorDataset(to_device(x, norm, device), ys)


def to_device(x: Blocks, norm: Standardizer | None, device: str, clips: int = 1024
              ) -> torch.Tensor:
    """The split as one tensor on ``device``, filled a few clips at a time (no whole
    copy of it in host memory)."""
    out = torch.empty((x.n, x.steps, x.width), dtype=torch.float32, device=device)
    for i in range(0, x.n, clips):
        part = x.rows(slice(i, i + clips))
        out[i:i + len(part)] = torch.from_numpy(norm.apply_(part) if norm else part).to(device)
    return out


class ChunkOrder(Sampler[int]):
    """Clip indices in an order that reads each stored chunk once per epoch (the
    store's chunk shuffle, :func:`~vida.store.dataset.chunk_shuffled`, over ``where``'s
    chunks, in windows of ``window``).  Each pass over the sampler is the next epoch:
    epoch ``e``'s order is seeded by ``(seed, e)``, so a training's batches are the
    same wherever it runs."""

    def __init__(self, where: Located, seed: int, window: int = 16) -> None:
        self._blocks = chunk_blocks(where.paths, where.rows)
        self.window, self.seed, self.epoch = max(1, window), seed, 0

    def __len__(self) -> int:
        return sum(len(b) for b in self._blocks)

    def __iter__(self):
        self.epoch += 1
        return iter(chunk_shuffled(self._blocks, self.window, self.seed, self.epoch - 1))


def load_blocks(parts: Sequence[Located], *, stream: bool = False,
                scratch: str | None = None) -> Blocks:
    """One split's input sets as blocks: streamed, mapped from the scratch folder that
    the machine's trainings share, or read once into this process."""
    if stream:
        return Blocks.of(list(parts))
    return Blocks.of([shared_rows(p, scratch) if scratch else read_float32(p) for p in parts])


def read_float32(where: Located) -> np.ndarray:
    """The located rows read straight into one float32 array."""
    return read_rows(where, out=np.empty((len(where.keys), *where.shape), np.float32))


def feature_bytes(parts: Sequence[Located]) -> int:
    """What the located rows take in memory as float32."""
    return sum(len(p.keys) * int(np.prod(p.shape)) * 4 for p in parts)


# the share of the memory available when a job starts that its trainings may hold
MEMORY_SHARE = 0.7


def default_budget(workers: int = 1) -> int:
    """Bytes of features one training may hold in memory: a share of what is
    available now, divided among the trainings that run side by side."""
    import psutil

    return int(MEMORY_SHARE * psutil.virtual_memory().available / max(1, workers))


def holding_for(parts: Sequence[Located], budget: int | None, workers: int = 1) -> str:
    """``memory`` when the located features fit the budget (bytes; None: the default
    for ``workers`` trainings side by side), else ``stream``."""
    limit = default_budget(workers) if budget is None else budget
    return "stream" if feature_bytes(parts) > limit else "memory"
