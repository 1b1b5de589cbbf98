"""Shared fixtures: temporary catalogs and stores, a real PostgreSQL server, shared data."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/faults/ is a ``faults`` test (``-m faults``)."""
    for item in items:
        if "faults" in item.path.relative_to(ROOT).parts[:2]:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared data not found at {SHARED}: tests expect ../shared beside the repo")
    return SHARED


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.db"


@pytest.fixture
def catalog(catalog_path: Path):
    from vida import open_catalog

    cat = open_catalog(catalog_path, create=True)
    yield cat
    cat.dispose()


@pytest.fixture
def store(catalog, tmp_path: Path):
    from vida.store import FeatureStore

    return FeatureStore(catalog, tmp_path / "store")


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``vida-batch`` as a user would: a separate process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "vida.cli", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


# -- PostgreSQL --------------------------------------------------------------

def _pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    found = shutil.which(name) or (candidates[-1] if candidates else None)
    if not found:
        pytest.fail(f"{name} not found: install Debian's postgresql package (.ci/run does)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """A throwaway PostgreSQL server on a loopback port, in its own temp dir, that a
    test may stop and start again (a server going away under a job)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="vida-pg-"))
        self.data = self.base / "data"
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.base, "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"
        subprocess.run([*self.as_postgres, _pg_bin("initdb"), "-D", str(self.data), "-U",
                        "postgres", "--auth=trust", "-E", "UTF8"], check=True,
                       capture_output=True)
        self.start()

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.as_postgres, _pg_bin("pg_ctl"), "-D", str(self.data), *args],
                       check=True, capture_output=True)

    def start(self) -> None:
        self._ctl("-l", str(self.base / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def new_database(self) -> str:
        import psycopg

        name = f"vida_{int(time.time() * 1e6)}"
        conninfo = self.url.replace("postgresql+psycopg", "postgresql") + "/postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"{self.url}/{name}"

    def remove(self) -> None:
        subprocess.run([*self.as_postgres, _pg_bin("pg_ctl"), "-D", str(self.data), "-m",
                        "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def _postgres_wanted() -> None:
    if os.environ.get("VIDA_SKIP_POSTGRES") == "1":
        pytest.skip("VIDA_SKIP_POSTGRES=1")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (each test gets a database of its own)."""
    _postgres_wanted()
    server = PgServer()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def own_pg_server() -> Iterator[PgServer]:
    """A server of this test's own, which it may stop and start."""
    _postgres_wanted()
    server = PgServer()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server."""
    return pg_server.new_database()


# -- a small synthetic dataset, ingested once per session ---------------------

@pytest.fixture(scope="session")
def synthetic_template(tmp_path_factory) -> Path:
    """4 classes x 10 clips: synthesised, ingested, split, reference tags imported."""
    from vida import open_catalog
    from vida.catalog.records.tags import store_tags
    from vida.jobs.data.ingest import ingest
    from vida.jobs.data.split import assign_splits
    from vida.semantics.tags import read_tag_json
    from vida.store import FeatureStore
    from vida.synth import synthesize

    root = tmp_path_factory.mktemp("synthetic")
    data = synthesize(root / "data", n_classes=4, clips_per_class=10, seed=3)
    catalog = open_catalog(root / "catalog.db", create=True)
    store = FeatureStore(catalog, root / "store")
    ingest(catalog, store, data.manifest, workers=1, progress=False)
    assign_splits(catalog, ratios=(0.6, 0.2, 0.2), seed=42)
    store_tags(catalog, "synth-ref", read_tag_json(data.tags_file))
    catalog.dispose()
    return root


@pytest.fixture
def synthetic(synthetic_template, tmp_path) -> Path:
    """A private copy of the synthetic workdir (catalog.db, store/, data/)."""
    work = tmp_path / "work"
    shutil.copytree(synthetic_template, work)
    return work


@pytest.fixture(scope="session")
def tiny_ast(tmp_path_factory):
    """An AST built from a config (random weights), saved and loaded back from a folder."""
    import warnings

    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    from vida.semantics.audioset import load_labels

    labels = load_labels()
    config = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, max_length=128, num_mel_bins=128,
                       id2label=dict(enumerate(labels)),
                       label2id={name: i for i, name in enumerate(labels)})
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-ast")
    ASTForAudioClassification(config).save_pretrained(folder)
    with warnings.catch_warnings():  # AST's 128 mel bins leave one filter empty
        warnings.simplefilter("ignore", UserWarning)
        ASTFeatureExtractor(max_length=128).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory):
    """A BLIP built from a config (random weights), saved and loaded back from a folder."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "ball", "red", "bouncing",
             "on", "the", "floor", "spinning", "bar"]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)})  # transformers 5
    config = BlipConfig(
        text_config=dict(vocab_size=len(words), hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64, encoder_hidden_size=32,
                         bos_token_id=2, pad_token_id=0, sep_token_id=3, eos_token_id=3,
                         max_position_embeddings=32),
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, image_size=32, patch_size=16),
        projection_dim=32)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-blip")
    BlipForConditionalGeneration(config).save_pretrained(folder)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(folder)
    return folder, set(words)


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    """A ViT with its image processor, built from a config (random weights), saved to a
    folder: the rgb and flow encoder of the tests that drive the pretrained path."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, image_size=32, patch_size=8)
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
