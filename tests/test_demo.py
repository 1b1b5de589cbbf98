"""A reduced `vida-batch demo`, end to end, as a user runs it."""

from __future__ import annotations

from tests.conftest import run_cli
from vida import open_catalog


def test_reduced_demo_is_complete(tmp_path):
    work = tmp_path / "demo"
    result = run_cli("demo", "--workdir", str(work), "--classes", "4", "--clips-per-class", "8",
                     "--seeds", "2", "--epochs", "2", "--generator-epochs", "1",
                     "--workers", "1", timeout=900)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    svd, caf = out.split("== SVDMap ==")[1].split("== CAFMap ==")

    def variants(table: str) -> list[str]:  # the first column of the results table rows
        rows = [line.strip() for line in table.splitlines() if " ± " in line]
        return [row.split("  ")[0] for row in rows]

    assert variants(svd) == ["vision only", "+ real audio", "+ generated audio",
                             "+ filtered generated audio"]
    assert variants(caf) == ["vision only", "+ real audio", "+ generated audio"]
    plots = [line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("plot")]
    assert len(plots) == 2
    for plot in plots:
        assert plot.endswith("results.png") and (work / "runs").exists()
        assert open(plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    cat = open_catalog(work / "catalog.db")
    experiments = cat.sql("SELECT run_id, arch, status FROM runs WHERE kind = 'experiment' "
                          "ORDER BY arch")
    assert experiments[["arch", "status"]].values.tolist() == [["cafmap", "finished"],
                                                              ["svdmap", "finished"]]
    per_kind = cat.sql("SELECT r.arch, r.kind, count(*) AS n FROM runs r WHERE r.experiment_id "
                       "IS NOT NULL AND r.kind <> 'experiment' GROUP BY 1, 2 ORDER BY 1, 2")
    assert per_kind.values.tolist() == [
        ["cafmap", "train-generator", 2], ["lstm", "train-classifier", 8],
        ["mlp", "train-classifier", 6], ["svdmap", "train-generator", 4]]
    summary = cat.sql("SELECT run_id, count(*) AS n FROM run_metrics WHERE run_id IN "
                      "(SELECT run_id FROM runs WHERE kind = 'experiment') GROUP BY 1")
    assert sorted(summary["n"]) == [3 * 6, 4 * 6]  # variants x (3 metrics x mean/std)
    assert cat.sql("SELECT count(*) AS n FROM clips WHERE status = 'ok'")["n"][0] == 32
