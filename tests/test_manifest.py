"""Manifests as MiT ships them and as people write them, and where a catalog finds its
media: resolved under a recorded media root, from any folder, relocated in one command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run_cli
from vida.keys import relocated_uri, resolve_uri, stored_uri
from vida.media.manifest import ManifestError, read_manifest


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really a video")
    return path


@pytest.fixture
def mit(tmp_path) -> Path:
    """MiT's layout: the CSVs beside training/ and validation/, paths relative to those."""
    root = tmp_path / "MiT"
    for split, clips in (("training", ["a", "b"]), ("validation", ["c"])):
        for clip in clips:
            touch(root / split / "applauding" / f"{clip}.mp4")
    (root / "trainingSet.csv").write_text("applauding/a.mp4,applauding,3,0\n"
                                          "applauding/b.mp4,applauding,2,1\n")
    (root / "validationSet.csv").write_text("applauding/c.mp4,applauding,3,0\n")
    return root


def test_mit_csvs_resolve_under_their_split_folder_and_agreement_is_no_split(mit):
    train = read_manifest(mit / "trainingSet.csv")
    assert train.base == mit / "training"
    assert [(f, s) for _, f, s in train.rows] == [
        ((mit / "training/applauding/a.mp4").resolve(), "training"),
        ((mit / "training/applauding/b.mp4").resolve(), "training")]
    val = read_manifest(mit / "validationSet.csv")
    assert [s for *_, s in val.rows] == ["validation"] and not val.refused


def test_a_csv_beside_its_paths_and_a_header_naming_the_split(tmp_path):
    touch(tmp_path / "clips/x/1.mp4")
    touch(tmp_path / "clips/x/2.mp4")
    (tmp_path / "list.csv").write_text("path,class,split,score\n"
                                       "clips/x/1.mp4,x,train,0.9\nclips/x/2.mp4,x,val,3\n")
    manifest = read_manifest(tmp_path / "list.csv")
    assert [s for *_, s in manifest.rows] == ["train", "val"]
    assert manifest.base == tmp_path


def test_excel_and_script_quirks_read_the_same(tmp_path):
    touch(tmp_path / "v/a b.mp4")
    touch(tmp_path / "v/c.mp4")
    text = '\ufeffpath,class\r\n"v/a b.mp4","x"\r\n\r\n  ,  \r\nv/c.mp4,x\r\n'
    (tmp_path / "m.csv").write_bytes(text.encode("utf-8"))
    manifest = read_manifest(tmp_path / "m.csv")
    assert [(r.class_name, f.name) for r, f, _ in manifest.rows] == [("x", "a b.mp4"),
                                                                     ("x", "c.mp4")]
    assert not manifest.refused


def test_unsafe_rows_are_refused_by_line_and_a_file_listed_twice_counts_once(tmp_path):
    for name in ("a", "b", "c", "d", "e"):
        touch(tmp_path / f"{name}.mp4")
    touch(tmp_path / "other/e.mp4")
    (tmp_path / "m.csv").write_text(
        "a.mp4,spin\n"          # line 1: fine
        "b.mp4,\n"              # line 2: empty class
        "c.mp4,spin/fan\n"      # line 3: a slash in the class
        "d.mp4,spin,bogus\n"    # line 4: no split of that name
        "a.mp4,spin\n"          # line 5: the same file again
        "e.mp4,spin\n"          # line 6: fine
        "other/e.mp4,spin\n")   # line 7: another file, the same clip key
    manifest = read_manifest(tmp_path / "m.csv")
    assert [f.name for _, f, _ in manifest.rows] == ["a.mp4", "e.mp4"]
    assert manifest.duplicates == 1
    reasons = dict(line.split(": ", 1) for line in manifest.refused)
    assert set(reasons) == {"line 2", "line 3", "line 4", "line 7"}
    assert "empty class" in reasons["line 2"] and "slash" in reasons["line 3"]
    assert "'bogus'" in reasons["line 4"] and "line 6" in reasons["line 7"]


def test_a_manifest_whose_paths_exist_nowhere_is_refused_with_the_folder_to_use(tmp_path):
    touch(tmp_path / "media/applauding/a.mp4")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists/trainingSet.csv").write_text("applauding/a.mp4,applauding,3,0\n")
    with pytest.raises(ManifestError) as error:
        read_manifest(tmp_path / "lists/trainingSet.csv")
    message = str(error.value)
    assert str(tmp_path / "lists") in message and "line 1: applauding/a.mp4" in message
    assert f"--media-root {tmp_path / 'media'}" in message
    assert read_manifest(tmp_path / "lists/trainingSet.csv", tmp_path / "media").rows


def test_ingest_of_a_manifest_with_no_path_records_nothing(tmp_path):
    (tmp_path / "trainingSet.csv").write_text("applauding/a.mp4,applauding,3,0\n")
    result = run_cli("ingest", "trainingSet.csv", "--no-progress", cwd=tmp_path)
    assert result.returncode == 1 and "none of its paths exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    status = run_cli("sql", "SELECT count(*) AS n FROM runs", "--format", "csv", cwd=tmp_path)
    assert status.stdout.split() == ["n", "0"]


def test_ingest_whose_every_clip_failed_exits_non_zero_with_the_commonest_cause(tmp_path):
    touch(tmp_path / "v/a.mp4")  # not a video
    (tmp_path / "m.csv").write_text("v/a.mp4,x\n")
    result = run_cli("ingest", "m.csv", "--no-progress", "--workers", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert "every one of 1 clips failed; commonest cause:" in result.stderr


def test_stored_resolved_and_relocated_sources(tmp_path):
    root = str(tmp_path / "MiT")
    inside = os.path.join(root, "training", "x", "a.mp4")
    assert stored_uri(inside, root) == "training/x/a.mp4"
    assert stored_uri("/elsewhere/b.mp4", root) == "/elsewhere/b.mp4"
    assert resolve_uri("training/x/a.mp4", root) == inside
    assert resolve_uri("/elsewhere/b.mp4", root) == "/elsewhere/b.mp4"
    assert relocated_uri("training/x/a.mp4", root, root, "/mnt/MiT") == \
        "/mnt/MiT/training/x/a.mp4"
    assert relocated_uri("/elsewhere/b.mp4", root, root, "/mnt/MiT") == "/elsewhere/b.mp4"


def test_a_catalog_from_before_media_roots_says_how_to_fix_it_and_relocate_does(synthetic):
    """Its sources are relative to the folder its ingest ran in and no root is recorded:
    from another folder a job says so in one line; `catalog relocate` fixes it."""
    from vida import open_catalog

    cat = open_catalog(synthetic / "catalog.db")
    with cat.transaction() as session:
        from sqlalchemy import text

        session.execute(text("DELETE FROM catalog_settings"))
        session.execute(text("UPDATE clips SET source_uri = 'data/' || source_uri"))
    cat.dispose()
    elsewhere = synthetic / "elsewhere"
    elsewhere.mkdir()
    args = ["--catalog", "../catalog.db", "--store", "../store", "frames"]
    before = run_cli(*args, cwd=elsewhere)
    assert before.returncode == 1 and "catalog relocate" in before.stderr
    fixed = run_cli("--catalog", "../catalog.db", "catalog", "relocate", str(synthetic),
                    str(synthetic), cwd=elsewhere)
    assert fixed.returncode == 0, fixed.stderr
    after = run_cli(*args, cwd=elsewhere)
    assert after.returncode == 0 and "representative frames of 40 clips" in after.stdout


def test_a_query_without_the_columns_a_job_needs_is_one_line(synthetic):
    result = run_cli("encode", "--encoder", "rgb=hog-color", "--query",
                     "SELECT clip_key FROM clips", cwd=synthetic)
    assert result.returncode == 1
    assert ("--query returns clip_key: it lacks source_uri, class_name, clip_id"
            in result.stderr)
