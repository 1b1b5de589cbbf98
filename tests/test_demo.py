"""A reduced `vida-batch demo`, end to end, as a user runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from vida import open_catalog
from vida.jobs.experiments.variants import (
    DISTILL,
    JOINT,
    MISSING_AT_TEST,
    TENT,
    learns_from_training_audio,
)

pytestmark = pytest.mark.slow  # a whole pipeline through the CLI


@pytest.fixture(scope="module")
def reduced_demo(tmp_path_factory) -> tuple[Path, str]:
    """A reduced `vida-batch demo`, run once for this module: its workdir and output."""
    work = tmp_path_factory.mktemp("demo") / "demo"
    result = run_cli("demo", "--workdir", str(work), "--classes", "4", "--clips-per-class", "8",
                     "--seeds", "2", "--epochs", "2", "--generator-epochs", "1",
                     "--workers", "1", "--labels-per-class", "2,all", "--train-missing", "",
                     timeout=900)
    assert result.returncode == 0, result.stderr
    return work, result.stdout


def test_reduced_demo_is_complete(reduced_demo):
    work, out = reduced_demo
    svd, caf = out.split("== SVDMap ==")[1].split("== CAFMap ==")

    def variants(table: str) -> list[str]:  # the first column of the results table rows
        rows = [line.strip() for line in table.splitlines() if " ± " in line]
        return [row.split("  ")[0] for row in rows]

    missing = [v.label for v in MISSING_AT_TEST]
    # the demo's SVDMap runs without the joint network, and its LSTM without TENT
    assert variants(svd) == ["vision only", "+ real audio", "+ generated audio",
                             "+ filtered generated audio",
                             *(m for m in missing if m != TENT.label), DISTILL.label]
    assert variants(caf) == ["vision only", "+ real audio", "+ generated audio", *missing,
                             DISTILL.label, JOINT.label]
    plots = [line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("plot")]
    assert len(plots) == 2
    for plot in plots:
        assert plot.endswith("results.png") and (work / "runs").exists()
        assert open(plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    cat = open_catalog(work / "catalog.db", create=True)
    experiments = cat.sql("SELECT run_id, arch, status FROM runs WHERE kind = 'experiment' "
                          "ORDER BY arch")
    assert experiments[["arch", "status"]].values.tolist() == [["cafmap", "finished"],
                                                              ["svdmap", "finished"]]
    per_kind = cat.sql("SELECT r.arch, r.kind, count(*) AS n FROM runs r WHERE r.experiment_id "
                       "IS NOT NULL AND r.kind <> 'experiment' GROUP BY 1, 2 ORDER BY 1, 2")
    assert per_kind.values.tolist() == [
        ["cafmap", "generate", 2],  # per seed: the cross-fitted set
        ["cafmap", "train-generator", 2 + 2 * 3],
        # 4 variants with audio missing at test per seed test the "+ real audio" model (5
        # with CAFMap's TENT); + the dropout-trained and the distilled student (and
        # CAFMap's joint network); + 6 variants x 2 seeds at 2 labels/class, and at "all"
        # labels the two the main table has not ("generated audio only" and its PCA
        # control; the others are its own runs)
        ["lstm", "test-classifier", 2 * 4],
        ["lstm", "train-classifier", 2 * (4 + 2) + 6 * 2 + 2 * 2],
        ["mlp", "test-classifier", 2 * 5],
        ["mlp", "train-classifier", 2 * (3 + 3) + 6 * 2 + 2 * 2],
        ["svdmap", "generate", 2 * 2],  # per seed: full and filtered, cross-fitted
        ["svdmap", "train-generator", 4 + 4 * 3]]  # 3 cross-fitting folds each
    summary = cat.sql("SELECT run_id, count(*) AS n FROM run_metrics WHERE run_id IN "
                      "(SELECT run_id FROM runs WHERE kind = 'experiment') AND name NOT LIKE "
                      "'%/recovery%' AND name NOT LIKE 'class=%' AND name NOT LIKE "
                      "'rank_correlation/%' AND name NOT LIKE 'generator=%' GROUP BY 1")
    # variants x (3 metrics x mean/std + the CI's two ends) + 5 paired numbers (with the
    # adjusted p) per variant other than vision only
    # per label count: 5 variants, 4 compared with vision only, and generated audio
    # alone with its control (5 numbers)
    labels = 2 * (6 * 8 + 5 * 5 + 5)
    assert sorted(summary["n"]) == [10 * 8 + 9 * 5 + labels, 11 * 8 + 10 * 5 + labels]
    # how close each generator's audio is: n_test, seeds, 6 measures with their CI's two
    # ends, 3 chance levels; SVDMap's two generators (all clips, IoU-kept), CAFMap's one
    quality = cat.sql("SELECT r.arch, count(*) AS n FROM run_metrics m JOIN runs r ON "
                      "r.run_id = m.run_id WHERE m.name LIKE 'generator=%' GROUP BY 1 "
                      "ORDER BY 1")
    assert quality.values.tolist() == [["cafmap", 23], ["svdmap", 2 * 23]]
    # each distilled student names its teacher: the "+ real audio" run of its seed and
    # label count, in its experiment
    students = cat.sql(
        "SELECT s.experiment_id, json_extract_string(s.params, '$.variant') AS variant, "
        "json_extract_string(t.params, '$.variant') AS teacher FROM runs s JOIN runs t ON "
        "t.run_id = json_extract_string(s.params, '$.teacher') WHERE s.experiment_id = "
        "t.experiment_id AND s.seed = t.seed")
    assert len(students) == 2 * 2 * 2  # 2 experiments x 2 seeds x (all, 2 labels/class)
    assert set(students["teacher"]) == {"+ real audio", "+ real audio @ 2 labels/class"}
    # a share of real audio's gain is stored only for generated variants, and only where
    # real audio gains significantly (else it is undefined, never a number)
    metrics = cat.sql("SELECT m.run_id, m.name, m.value FROM run_metrics m JOIN runs r ON "
                      "r.run_id = m.run_id WHERE r.kind = 'experiment'")
    value = {(r, n): v for r, n, v in metrics.itertuples(index=False)}
    for (run, name), _ in value.items():
        if name.endswith("/recovery"):
            group, variant = name[:-len("/recovery")].rpartition("/")[::2]
            real = f"{group}/+ real audio" if group else "+ real audio"
            assert learns_from_training_audio(variant.split(" @ ")[0])
            assert value[(run, f"{real}/delta_ci_low")] > 0
            assert (run, name.replace("/recovery", "/recovery_ci_low")) in value
    # per class, in the catalog: which classes generated audio helps is one SELECT
    helped = cat.sql("SELECT r.arch, split_part(m.name, '/', 1) AS class, m.value FROM "
                     "run_metrics m JOIN runs r ON r.run_id = m.run_id WHERE r.kind = "
                     "'experiment' AND m.name LIKE 'class=%/+ generated audio/delta_vs_vision'")
    assert sorted(helped.groupby("arch").size().items()) == [("cafmap", 4), ("svdmap", 4)]
    correlated = cat.sql("SELECT r.arch, m.name FROM run_metrics m JOIN runs r ON r.run_id "
                         "= m.run_id WHERE m.name LIKE 'rank_correlation/%/with mean IoU'")
    assert set(correlated["arch"]) <= {"svdmap"}  # IoU needs tags and a dictionary
    # the closing lines are the wins the catalog's tables give, and only those
    from vida.jobs.reports.report import experiment_tables
    from vida.views import BEATS, verdicts

    closing = out.split("== What beats vision only")[1].split("\nreport ")[0]
    for arch, name in (("svdmap", "SVDMap"), ("cafmap", "CAFMap")):
        run_id = experiments.set_index("arch").loc[arch, "run_id"]
        tables = experiment_tables(cat, run_id)
        labels = tables.labels.assign(variant=tables.labels["variant"] + " @ "
                                      + tables.labels["labels_per_class"] + " labels/class")
        wins = [f"{name}: {line}" for line in verdicts(tables.main, only=BEATS)
                + verdicts(labels, only=BEATS)]
        printed = [line for line in closing.splitlines() if line.startswith(f"{name}: ")]
        assert sorted(printed) == sorted(wins or [
            f"{name}: no variant: every difference from vision only is within noise or "
            "negative"]), (printed, wins)
    assert out.count("label efficiency (classifiers on N labelled") == 2
    assert len([line for line in out.splitlines() if line.startswith("labels ")]) == 2
    assert cat.sql("SELECT count(*) AS n FROM clips WHERE status = 'ok'")["n"][0] == 32
    # the few-label classifiers get the optimisation steps of the full training set
    from vida.jobs.experiments.label_efficiency import equal_step_epochs

    few = cat.sql("SELECT arch, params FROM runs WHERE kind = 'train-classifier' AND "
                  "json_extract_string(params, '$.variant') LIKE '%@ 2 labels/class'")
    n_train = int(cat.sql("SELECT count(*) AS n FROM clips WHERE split = 'train'")["n"][0])
    for arch, params in few.itertuples(index=False):
        spec = json.loads(params)
        assert spec["epochs"] == equal_step_epochs(2, spec["batch_size"], n_train, 2 * 4), arch

    # the README's section is printed from this catalog: the numbers of the printed tables
    import subprocess
    import sys

    from tests.conftest import ROOT

    section = subprocess.run([sys.executable, str(ROOT / "bin" / "demo_section"), str(work)],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    for name, printed in (("SVDMap (LSTM)", svd), ("CAFMap (MLP)", caf)):
        table = section.split(f"| {name} | top-1")[1].split("\n\n")[0]
        for variant in ("vision only", "+ real audio", "+ generated audio"):
            row = next(line for line in printed.splitlines()
                       if line.strip().startswith(variant + " "))
            top1 = row.split(variant, 1)[1].split()[1]  # "n_test top-1 ± ..."
            assert f"| {variant} | {top1} |" in table, (variant, table)
    assert "Machine: " in section and "```" in section


def _browser(playwright):
    """Debian's chromium, started here (no browser download: the project installs
    the distribution's)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "the report test needs Debian's chromium: apt-get install chromium"
    return playwright.chromium.launch(executable_path=path, args=[
        "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def test_the_demo_writes_a_report_that_a_browser_shows(reduced_demo):
    from playwright.sync_api import sync_playwright

    work, out = reduced_demo
    pages = [Path(line.split(maxsplit=1)[1]) for line in out.splitlines()
             if line.startswith("report ")]
    assert [p.name for p in pages] == ["report.html", "report.html"]
    cat = open_catalog(work / "catalog.db")
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        for page_file in pages:
            run_id = page_file.parent.name
            page = browser.new_page()
            page.goto(page_file.as_uri())
            assert run_id in page.title()
            # the tables: main, how close the generated audio is, label efficiency,
            # recovery, per class
            assert page.locator("table").count() == 5
            r2 = cat.sql(f"SELECT value FROM run_metrics WHERE run_id = '{run_id}' AND "
                         "name = 'generator=all/r2'")["value"].iloc[0]
            assert f"{r2:+.3f} [" in page.locator("table").nth(1).inner_text()
            images = page.evaluate("() => [...document.images].map(i => [i.alt, i.complete "
                                   "&& i.naturalWidth > 100 && i.src.startsWith('data:')])")
            assert images == [["results", True], ["label efficiency", True],
                              ["recovery", True], ["per class", True]]
            # the main table's SQL, run as the page gives it, has the number the page shows
            page.locator("details summary").first.click()  # a reader opens it
            sql = page.locator("details pre").first.inner_text()
            rows = cat.sql(sql.rstrip(";"))
            real = rows.set_index("name")["value"]["+ real audio/top1_mean"]
            cells = page.locator("table").first.locator("tr", has_text="+ real audio")
            assert f"{real:.3f} ± " in cells.first.inner_text()
            assert "(adj. " in page.locator("table").first.inner_text()  # adjusted p
            assert '"seeds": 2' in page.locator("pre").last.inner_text()  # the spec
            page.close()
        browser.close()


def test_the_example_notebook_runs_on_a_demo_catalog(reduced_demo, tmp_path, monkeypatch):
    """docs/notebooks/experiment_analysis.ipynb, executed by a real Jupyter kernel from
    another folder, reads the same numbers as the report does."""
    import nbclient
    import nbformat

    from tests.conftest import ROOT
    from vida.jobs.reports.report import experiment_tables

    work, _ = reduced_demo
    monkeypatch.setenv("VIDA_CATALOG", str(work / "catalog.db"))
    notebook = nbformat.read(ROOT / "docs" / "notebooks" / "experiment_analysis.ipynb", 4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "print(run_id); print(main.to_json(orient='records')); "
        "print(per_class.to_json(orient='records'))"))
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot
    run_id, main, per_class = outputs[-1]["text"].splitlines()
    tables = experiment_tables(open_catalog(work / "catalog.db"), run_id)
    main = {row["variant"]: row for row in json.loads(main)}
    assert list(main) == list(tables.main["variant"])
    for row in tables.main.to_dict("records"):
        assert main[row["variant"]]["top1_mean"] == pytest.approx(row["top1_mean"])
    gains = {(r["class_name"], r["variant"]): r["delta_vs_vision"]
             for r in json.loads(per_class)}
    expected = tables.per_class.dropna(subset=["delta_vs_vision"])
    assert len(gains) == len(expected) > 0
    for row in expected.to_dict("records"):
        assert gains[(row["class_name"], row["variant"])] == pytest.approx(
            row["delta_vs_vision"])
