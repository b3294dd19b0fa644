import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raynas.api import RANDOM_WS
from raynas.cli import main
from raynas.evaluation.compare import HAND, RESULTS_SCHEMA
from raynas.evaluation.report import ReportError, write_report

PROXYLESS = "proxyless"
OFA = "ofa"

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def saved_results(run_dir, record=True):
    rows = []
    for target, scale in (("cpu-1t", 1.0), ("cpu-1t-b16", 6.0)):
        for i, budget in enumerate((1.5 * scale, 2.0 * scale)):
            for seed in range(2):
                for method, acc in ((PROXYLESS, 0.95), (RANDOM_WS, 0.93)):
                    rows.append(
                        {
                            "target": target,
                            "budget_ms": budget,
                            "method": method,
                            "seed": seed,
                            "arch": "k3e3|skip|k5e6|k7e3|k3e6|k5e3",
                            "arch_id": "a",
                            "width_mult": 1.0,
                            "predicted_ms": 0.9 * budget,
                            "measured_ms": 0.95 * budget,
                            "test_acc": acc + 0.01 * i + 0.001 * seed,
                            "constrained": False,
                            "search_seconds": 30.0,
                            "retrain_seconds": 20.0,
                        }
                    )
        rows.append(
            {
                "target": target,
                "budget_ms": None,
                "method": HAND,
                "seed": 0,
                "arch": "|".join(["k3e6"] * 6),
                "arch_id": "h",
                "width_mult": 0.5,
                "predicted_ms": None,
                "measured_ms": 3.0 * scale,
                "test_acc": 0.9712,
                "constrained": None,
                "search_seconds": 0.0,
                "retrain_seconds": 20.0,
            }
        )
        rows.append(rows[-1] | {"width_mult": 1.0, "measured_ms": 4.0 * scale, "test_acc": 0.98})
    run_dir.mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA), run_dir / "results.parquet")
    if record:
        (run_dir / "record.json").write_text(
            json.dumps(
                {
                    "git_commit": "abc123",
                    "seeds": [0, 1],
                    "space": "mnist-small",
                    "created": "now",
                    "phase_seconds": {"profile": 12.5, "search": 100.0},
                    "trial_seconds": {PROXYLESS: {"search": 120.0, "retrain": 80.0, "finalists": 8}},
                    "libraries": {"torch": "2.14.1"},
                    "hardware": {"cpu-1t": {"backend": "torch-cpu", "device": "AMD EPYC", "threads": "1", "batch_size": 1}},
                    "data": {"dataset": "mnist-embedded", "sizes": {"train": 1, "val": 1, "test": 1}, "split_seed": 0, "protocol": "p"},
                    "hyperparameters": {"search": {"search_epochs": 3}},
                    "tuning": "arch lr from two runs on validation data",
                }
            )
        )
    return rows


def test_report_renders_from_a_saved_results_table(tmp_path):
    rows = saved_results(tmp_path)
    paths = write_report(tmp_path)
    assert {p.name for p in paths} == {"report.md", "report.html", "pareto-cpu-1t.png", "pareto-cpu-1t-b16.png", "architectures.png"}
    for png in (p for p in paths if p.suffix == ".png"):
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5_000
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    for r in rows:  # every result appears with its own values
        budget = "n/a" if r["budget_ms"] is None else format(r["budget_ms"], ".3f")
        line = f"| {r['target']} | {budget} | {r['method']} | {r['seed']} | {r['arch']} |"
        assert line in md and f"{r['test_acc']:.4f} |" in md
    assert "| 1.500 | 2 | 95.05 +- 0.07 | 93.05 +- 0.07 | +2.00 +- 0.00 | n/a |" in md  # paired gap per budget
    assert "| x0.5 | 1 | 97.12 +- 0.00 |" in md
    assert "| profile | 12.5 |" in md and "| total | 112.5 |" in md and "abc123" in md
    assert "How the search settings were chosen: arch lr from two runs on validation data" in md
    assert (
        "| 1.500 | 2 | 95.05 +- 0.07 | 93.05 +- 0.07 | +2.00 +- 0.00 | n/a | n/a | n/a | n/a "
        "| 97.12 (0/1 seeds between widths, else nearest width) | -2.12 |" in md
    )
    assert (
        "NAS test accuracy over the budgets, tightest first: 95.05 -> 96.05 %; it rises with the budget. "
        "Against random search in accuracy and measured latency together, NAS is at least as good in both at 2, "
        "at most as good in both at 0 and trades one for the other at 0 of 2 budgets." in md
    )
    assert "<table>" in page and "report/pareto-cpu-1t.png" in page and "abc123" in page


def test_report_without_record_says_so_and_without_results_refuses(tmp_path):
    saved_results(tmp_path / "run", record=False)
    write_report(tmp_path / "run")
    assert "record.json is missing" in (tmp_path / "run" / "report.md").read_text()
    with pytest.raises(ReportError, match="results.parquet does not exist"):
        write_report(tmp_path / "empty")


def test_cli_report_command(tmp_path, capsys):
    saved_results(tmp_path)
    assert main(["report", str(tmp_path)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "results.parquet does not exist" in capsys.readouterr().err


def test_report_names_the_nas_method_that_ran_and_no_missing_command(tmp_path):

    rows = saved_results(tmp_path)
    write_report(tmp_path)
    assert "ProxylessNAS against random search" in (tmp_path / "report.md").read_text()
    ofa_rows = [r | {"method": OFA} if r["method"] == PROXYLESS else r for r in rows]
    pq.write_table(pa.Table.from_pylist(ofa_rows, schema=RESULTS_SCHEMA), tmp_path / "results.parquet")
    write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "Once-for-All against random search" in md and "ProxylessNAS" not in md
    with pytest.raises(ReportError) as error:
        write_report(tmp_path / "empty")
    assert "raynas sweep" not in str(error.value)


@pytest.mark.faults
def test_report_of_a_run_that_stopped_on_an_error_says_so(tmp_path):
    (tmp_path / "FAILED").write_text("ClusterError: no GPU\n")
    with pytest.raises(ReportError, match=r"stopped on an error \(ClusterError: no GPU\).*raynas run --resume"):
        write_report(tmp_path)


def test_report_counts_results_the_window_picked_and_shows_the_argmax(tmp_path):
    rows = saved_results(tmp_path)
    rows = [r | ({"constrained": r["seed"] == 0, "argmax_ms": 1.41 * r["budget_ms"]} if r["method"] == PROXYLESS else {}) for r in rows]
    pq.write_table(pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA), tmp_path / "results.parquet")
    write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "4 of 8 NAS results came from the budget window's fallback" in md
    assert "| 0.9712 | n/a | n/a |" in md and "| yes | 2.115 |" in md
