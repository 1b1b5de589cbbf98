"""One flipped 64-byte block in a sealed shard: the read names the shard, the clip
and the fix (training, prototypes, generate, condition, tagging generated audio,
projecting an encoded set);
the run is recorded as failed; `fsck --repair` quarantines the shard; the next
ingest recomputes exactly its clips; `fsck --compact` reclaims the rows that
recomputing left dead."""

from __future__ import annotations

import re

import h5py

from tests.conftest import run_cli
from vida import open_catalog

PROGRESS_BAR = re.compile(r"^[\w-]+: +\d+%\|")


def _damage(synthetic, catalog_url: str, feature_set: str) -> tuple[str, set[str]]:
    """Flip 64 bytes in the middle of the first chunk of the set's first shard; its
    path (relative to the store) and the clips whose rows it holds."""
    cat = open_catalog(catalog_url, create=True)
    shard = cat.sql("SELECT id, path FROM shards WHERE feature_set = :f ORDER BY id LIMIT 1",
                    {"f": feature_set}).iloc[0]
    lost = set(cat.sql("SELECT clip_key FROM features WHERE shard_id = :s",
                       {"s": int(shard["id"])})["clip_key"])
    cat.dispose()
    path = synthetic / "store" / shard["path"]
    with h5py.File(path, "r") as h5:
        info = h5["data"].id.get_chunk_info(0)
        offset = info.byte_offset + info.size // 2
    with open(path, "r+b") as fh:
        fh.seek(offset)
        block = fh.read(64)
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in block))
    return str(shard["path"]), lost


def _named_in_one_line(done, catalog_url: str, kind: str, path: str, lost: set[str]) -> None:
    """The job stopped with one line naming the shard, a clip and the fix, and its run
    is recorded as failed because of the damage."""
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.strip().splitlines()
             if not PROGRESS_BAR.match(line)]  # the job's own bar, before it stopped
    assert len(lines) == 1, done.stderr
    message = lines[0]
    assert path in message and "fsck --repair" in message
    assert any(key in message for key in lost)
    cat = open_catalog(catalog_url, create=True)
    run = cat.sql("SELECT status, error FROM runs WHERE kind = :k ORDER BY started_at DESC",
                  {"k": kind}).iloc[0]
    cat.dispose()
    assert run["status"] == "failed" and "damaged" in run["error"]


def test_a_damaged_shard_is_named_quarantined_and_recomputed(synthetic, catalog_url):
    env = {"VIDA_CATALOG": catalog_url}
    path, lost = _damage(synthetic, catalog_url, "rgb/hog-color")
    train = run_cli("train", "classifier", "--epochs", "1", cwd=synthetic, env=env)
    _named_in_one_line(train, catalog_url, "train-classifier", path, lost)

    check = run_cli("fsck", cwd=synthetic, env=env)
    assert check.returncode == 1 and "checksum" in check.stdout
    repair = run_cli("fsck", "--repair", cwd=synthetic, env=env)
    assert repair.returncode == 0, repair.stdout
    assert (synthetic / "store" / "quarantine" / path).exists()

    again = run_cli("ingest", "data/manifest.csv", "--workers", "1", "--no-progress",
                    cwd=synthetic, env=env)
    assert again.returncode == 0, again.stderr
    assert f"{len(lost)} ok" in again.stdout and f"{40 - len(lost)} skipped" in again.stdout
    cat = open_catalog(catalog_url, create=True)
    per_set = cat.sql("SELECT feature_set, count(*) AS n, count(DISTINCT clip_key) AS d "
                      "FROM features GROUP BY 1")
    assert set(per_set["n"]) == {40} and set(per_set["d"]) == {40}
    cat.dispose()

    # recomputing rewrote the flow and audio rows of those clips: the old ones are dead
    dead = run_cli("fsck", cwd=synthetic, env=env)
    assert dead.returncode == 0 and "dead rows" in dead.stdout
    compacted = run_cli("fsck", "--compact", cwd=synthetic, env=env)
    assert compacted.returncode == 0 and "compacted" in compacted.stdout
    clean = run_cli("fsck", cwd=synthetic, env=env)
    assert clean.returncode == 0 and "dead rows" not in clean.stdout
    trained = run_cli("train", "classifier", "--epochs", "1", cwd=synthetic, env=env)
    assert trained.returncode == 0, trained.stderr


def test_prototypes_from_a_damaged_audio_shard_name_it_and_fail_their_run(synthetic):
    """`prototypes --from-catalog` reads every tagged train clip's audio features: a
    damaged shard among them stops it the same way, with nothing stored."""
    url = str(synthetic / "catalog.db")
    path, lost = _damage(synthetic, url, "audio/ast-fbank")
    done = run_cli("prototypes", "--from-catalog", "--tags", "synth-ref", "--name", "p",
                   cwd=synthetic)
    _named_in_one_line(done, url, "prototypes", path, lost)
    cat = open_catalog(url, create=True)
    assert cat.sql("SELECT count(*) AS n FROM feature_sets WHERE name = 'prototype/p'"
                   )["n"][0] == 0
    cat.dispose()


def test_generate_from_a_damaged_rgb_shard_names_it_and_fails_its_run(synthetic):
    """`generate` reads each clip's frame features to make its audio features: a
    damaged shard among them stops it the same way."""
    url = str(synthetic / "catalog.db")
    trained = run_cli("train", "generator", "--epochs", "1", "--batch-size", "16",
                      cwd=synthetic)
    assert trained.returncode == 0, trained.stderr
    run_id = trained.stdout.split("run ", 1)[1].split(";")[0]
    path, lost = _damage(synthetic, url, "rgb/hog-color")
    done = run_cli("generate", "--run", run_id, cwd=synthetic)
    _named_in_one_line(done, url, "generate", path, lost)


def test_condition_from_damaged_prototypes_names_them_and_fails_its_run(synthetic):
    """`condition` reads the prototype of each label its captions chose: a damaged
    prototype shard stops it the same way."""
    url = str(synthetic / "catalog.db")
    for args in (["frames"], ["caption", "--import", "data/captions"],
                 ["prototypes", "--from-catalog", "--tags", "synth-ref", "--name", "p"]):
        assert run_cli(*args, cwd=synthetic).returncode == 0, args
    path, lost = _damage(synthetic, url, "prototype/p")
    done = run_cli("condition", "--prototypes", "prototype/p", "--name", "c", cwd=synthetic)
    _named_in_one_line(done, url, "condition", path, lost)


def test_tagging_a_damaged_generated_set_names_it_and_fails_its_run(synthetic, tiny_ast):
    """`tag --on generated/...` (SVDMap's tagging of generated audio) reads the
    generated features of each clip: a damaged shard among them stops it the same
    way, with no tag stored."""
    url = str(synthetic / "catalog.db")
    trained = run_cli("train", "generator", "--epochs", "1", "--batch-size", "16",
                      cwd=synthetic)
    assert trained.returncode == 0, trained.stderr
    run_id = trained.stdout.split("run ", 1)[1].split(";")[0]
    generated = run_cli("generate", "--run", run_id, cwd=synthetic)
    assert generated.returncode == 0, generated.stderr
    path, lost = _damage(synthetic, url, f"generated/{run_id}")
    done = run_cli("tag", "--model", str(tiny_ast), "--on", f"generated/{run_id}",
                   "--source", "g", cwd=synthetic)
    _named_in_one_line(done, url, "tag", path, lost)
    cat = open_catalog(url, create=True)
    tagged = set(cat.sql("SELECT DISTINCT clip_key FROM audio_tags WHERE source = 'g'"
                         )["clip_key"])
    cat.dispose()
    assert not tagged & lost  # nothing was tagged from the damaged rows


def test_projecting_a_damaged_encoded_set_names_it_and_fails_its_run(synthetic, tiny_ast):
    """`encode --project D` fits its PCA on the train clips of the audio set: a damaged
    shard of that set stops it the same way, with no projection saved."""
    url = str(synthetic / "catalog.db")
    args = ["encode", "--encoder", f"audio=ast:{tiny_ast}", "--device", "cpu", "--no-progress"]
    encoded = run_cli(*args, cwd=synthetic)
    assert encoded.returncode == 0, encoded.stderr
    source = f"audio/{tiny_ast.name}-pooled"
    path, lost = _damage(synthetic, url, source)
    done = run_cli(*args, "--project", "4", cwd=synthetic)
    _named_in_one_line(done, url, "encode", path, lost)
    assert not list((synthetic / "store" / "projections").glob("*.npz"))
