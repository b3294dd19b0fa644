"""Every benchmark runs in --smoke-test mode and ends with one JSON line of its headline figures."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import background
from tests.conftest import SHARED_DATA, load_script, shared_data
from tests.scripts import run_json

ROOT = Path(__file__).resolve().parents[2]


def run_smoke(script: str, *args: str) -> dict:
    """The benchmark's smoke run in a subprocess with a Ray of its own (not any other Ray running on the
    machine): for the benchmarks that restart themselves in their target's environment."""
    return run_json([sys.executable, str(ROOT / script), "--smoke-test", *args], cwd=ROOT, env=os.environ | {"RAY_ADDRESS": "local"})


def run_smoke_here(script: str, *args: str) -> dict:
    """The benchmark's ``main()`` with ``--smoke-test`` in this process, as its command line would call it
    (on the session Ray where it uses one): no interpreter, torch import or Ray start of its own. Its folder
    comes first on sys.path, as ``python <script>`` puts it, for the sibling modules it imports by bare name."""
    printed, argv, threads, folder = io.StringIO(), sys.argv, torch.get_num_threads(), str((ROOT / script).parent)
    sys.argv = [str(ROOT / script), "--smoke-test", *args]
    sys.path.insert(0, folder)
    try:
        module = load_script(script)
        with contextlib.redirect_stdout(printed):
            module.main()
    finally:
        sys.path.remove(folder)
        sys.argv = argv
        torch.set_num_threads(threads)
    return json.loads(printed.getvalue().strip().splitlines()[-1])


def test_supernet_cost_reports_ratios():
    out = run_smoke_here("experiments/bench/supernet_cost.py")
    assert {"memory_ratio_two", "time_ratio_two", "memory_ratio_full", "candidates", "device"} <= set(out)
    by_n = out["memory_ratio_full_by_candidates"]
    assert by_n["4"] < by_n["6"] <= by_n["7"]
    assert out["memory_ratio_two"] < out["memory_ratio_full"]
    assert out["memory_ratio_entangled"] > 0 and out["time_ratio_entangled"] > 0


def latency_accuracy_smoke(out: Path) -> tuple[dict, Path]:
    return run_smoke("experiments/bench/latency_accuracy.py", "--target", "ort-cpu-1t", "--out", str(out)), out


def budget_hit_smoke(out: Path) -> tuple[dict, Path]:
    return run_smoke("experiments/bench/budget_hit.py", "--out", str(out)), out


@pytest.mark.background.with_args(latency_accuracy_smoke)  # it restarts itself in its target's environment: a subprocess
def test_latency_accuracy_reports_headline_keys():
    out, tmp_path = background.result(latency_accuracy_smoke)
    assert {
        "target",
        "n",
        "mape",
        "within_10pct",
        "kendall_tau",
        "remeasure_tau",
        "independent_within_10pct",
        "independent_kendall_tau",
        "unit_factor",
    } <= set(out)
    assert out["n"] == 10 and 0 <= out["within_10pct"] <= 1 and -1 <= out["kendall_tau"] <= 1
    assert (
        out["independent_n"] == 4
        and 0 <= out["independent_within_10pct"] <= 1
        and out["unit_factor"] > 0
        and out["allocator"] == "glibc-default"
    )
    assert list(tmp_path.glob("latency_accuracy-ort-cpu-1t-*.parquet"))


def amortized_search_smoke(out: Path) -> tuple[dict, Path, str]:
    """On a slice of the real CIFAR-10 where ../shared/data has it, else on the embedded MNIST (one run
    either way: the two differ only in the space, targets and data the script picks)."""
    data = "cifar10" if (SHARED_DATA / "cifar10").is_dir() else "mnist"
    return run_smoke("experiments/bench/amortized_search.py", "--out", str(out), "--data", data), out, data


@pytest.mark.background.with_args(amortized_search_smoke)  # a whole OFA run on a Ray of its own, beside the one-core tests
def test_amortized_search_reports_costs_and_replica_speedup():
    out, tmp_path, data = background.result(amortized_search_smoke)
    assert {
        "marginal_cost_ratio",
        "break_even_scenarios",
        "replica_speedup_2v1",
        "kendall_tau",
        "predictor_rmse_heldout",
        "predictor_rmse_mean_baseline",
    } <= set(out)
    assert out["dataset"] == data and out["scenarios"] == 6 and 0 < out["marginal_cost_ratio"] and out["replica_speedup_2v1"] > 0
    assert (tmp_path / "predictor" / "predictor.pt").is_file() and (tmp_path / "mlflow.db").is_file()
    assert list(tmp_path.glob("mlartifacts/*/artifacts/predictor/predictor.pt"))  # artifacts beside the store, not in ./mlruns


def test_throughput_reports_ratios_against_the_bare_loop(tmp_path):
    out = run_smoke_here("experiments/bench/throughput.py", "--out", str(tmp_path))
    assert {"device", "retrain_vs_bare", "search_vs_bare", "loader_images_per_s", "peak_mem_ratio_two_path"} <= set(out)
    assert out["retrain_vs_bare"] > 0 and out["search_vs_bare"] > 0 and out["loader_images_per_s"] > 0
    assert out["peak_mem_ratio_two_path"] >= 1.0  # a search iteration holds at least one path's activations
    # its page: the data as printed, six modes in the table, and a README.md that shows them with the commit
    page = tmp_path / "throughput"
    results = json.loads((page / "results.json").read_text())
    assert results["summary"] == out and [r["mode"] for r in results["rows"]] == list(out["images_per_s"])
    assert (page / "results.csv").read_text().splitlines()[0] == "mode,label,images_per_s,vs_bare"
    readme = (page / "README.md").read_text()
    assert f"- commit: `{results['provenance']['commit']}`" in readme and results["provenance"]["commit"] != "unknown"
    assert "--smoke-test --out" in results["provenance"]["command"]
    for key in ("retrain_vs_bare", "search_vs_bare", "ofa_vs_bare", "peak_mem_ratio_two_path", "loader_images_per_s"):
        assert f"| {key} | {results['summary'][key]} |" in readme
    for row in results["rows"]:
        assert f"| {row['mode']} | {row['label']} | {row['images_per_s']} | {row['vs_bare']} |" in readme


def test_throughput_data_parallel_scaling_of_two_workers(tmp_path):
    out = run_smoke_here("experiments/bench/throughput.py", "--workers", "2", "--out", str(tmp_path))
    assert out["workers"] == 2 and 0 < out["scaling_efficiency"] and 0 < out["scaling_efficiency_local_bn"]
    assert set(out["images_per_s"]) == {"1 global", "2 global", "2 local"}
    results = json.loads((tmp_path / "throughput_workers" / "results.json").read_text())
    assert results["summary"] == out and len(results["rows"]) == 6


def test_throughput_on_a_real_cifar10_slice():
    shared_data("cifar10")
    page = ROOT / "benchmarks" / "throughput" / "results.json"
    before = page.read_bytes() if page.exists() else None
    out = run_smoke_here("experiments/bench/throughput.py", "--data", "cifar10")
    assert out["data"] == "cifar10" and out["images_per_s"]["bare"] > 0
    assert (page.read_bytes() if page.exists() else None) == before  # a smoke run without --out leaves the repo's page alone


@pytest.mark.background.with_args(budget_hit_smoke)  # it restarts itself in its target's environment: a subprocess
def test_budget_hit_reports_hit_rates_of_both_losses():
    out, tmp_path = background.result(budget_hit_smoke)
    assert {"hit_rate", "hit_rate_old_loss", "median_lat_over_budget", "runs"} <= set(out)
    assert out["runs"] == 2 and 0 <= out["hit_rate"] <= 1 and out["median_lat_over_budget"] > 0
    assert (tmp_path / "budget_hit.png").read_bytes()[:4] == b"\x89PNG"


def test_memory_format_reports_both_layouts_for_every_network():
    out = run_smoke_here("experiments/bench/memory_format.py")
    assert set(out["nhwc_vs_nchw"]) == {
        "MobileNetV2-style x0.25",
        "MobileNetV2-style x0.5",
        "MobileNetV2-style x1",
        "kernel-7 architecture",
        "supernet, sampled path",
    }
    assert all(r > 0 for r in out["nhwc_vs_nchw"].values()) and out["min_ratio"] <= out["max_ratio"]


def test_nb201_hw_scores_every_black_box_search_against_the_tables_optimum(tmp_path):
    shared_data("nb201-hw")
    out = run_smoke("experiments/bench/nb201_hw.py", "--out", str(tmp_path))
    assert out["cells"] == len(out["datasets"]) * len(out["devices"]) * out["budgets"] == 6
    assert out["strategies"][0] == "random" and {"evolution", "local", "tpe", "nsga2"} <= set(out["strategies"])
    assert 0 <= out["hypervolume_gap_mean"]["nsga2"] <= 1 and 0 <= out["front_found_share"]["nsga2"] <= 1
    for name in out["strategies"]:
        lo, hi = out["regret_ci95"][name]
        assert 0 <= out["regret_mean"][name] and lo <= out["regret_mean"][name] <= hi and out["signal_regret_mean"][name] >= 0
    assert out["floor_regret_mean"] >= 0 and set(out["beats_random_cells"]) == set(out["strategies"][1:])
    page = tmp_path / "nb201_hw"
    results = json.loads((page / "results.json").read_text())
    assert results["summary"] == out and len(results["rows"]) == 2 * len(out["strategies"])  # (device, search) on one dataset
    assert "goal " in (page / "README.md").read_text() and (page / "regret_over_evaluations.png").stat().st_size > 0
    cells = json.loads((page / "cells.json").read_text())
    assert len(cells) == out["cells"] * len(out["strategies"]) and (page / "regret_over_seconds.png").stat().st_size > 0
    cost = out["training_cost"]
    assert cost["steps"] > 0 and cost["overhead_s"] >= 0 and cost["seconds_per_mflop"] >= 0
    for c in cells:  # simulated seconds: each seed's sum over its evaluations, the regret curve over seconds never rises
        assert len(c["seconds"]) == len(c["signal_regret"]) and min(c["seconds"]) > 0
        assert len(c["curve_seconds"]) == len(out["seconds_grid"]) and all(np.diff(c["curve_seconds"]) <= 1e-9)
    assert all(out["simulated_seconds_mean"][n] > 0 for n in out["strategies"])


def test_ranking_scores_cells_with_shared_weights_against_the_table_and_runs_both_one_shot_searches(tmp_path):
    shared_data("cifar10"), shared_data("nb201-hw")
    out = run_smoke("experiments/bench/ranking.py", "--out", str(tmp_path), "--work", str(tmp_path / "work"))
    windows = [r for r in out["rows"] if r["device"] != "all"]
    assert [r["device"] for r in out["rows"]][0] == "all" and len(windows) == 3  # one device x 3 budgets in the smoke run
    assert all(set(r) == {"space", "sharing", "device", "budget", "archs", "kendall_tau_signal", "kendall_tau_test"} for r in out["rows"])
    assert all(-1 <= r["kendall_tau_test"] <= 1 and r["archs"] > 1 for r in out["rows"])
    assert out["space"] == "nb201" and out["sharing"] == "separate" and out["archs"] >= 8
    assert 0 < out["uniform_pick_acc"] <= out["optimum_acc"] and out["nas_true_acc"] <= out["optimum_acc"]
    assert out["random_ws_true_acc"] <= out["optimum_acc"]
    scores = json.loads((tmp_path / "work" / "scores.json").read_text())["scores"]  # cached by cell code: a rerun scores nothing again
    assert len(scores) == out["archs"] and all(0 <= v <= 1 for v in scores.values())
    searches = json.loads((tmp_path / "work" / "searches.json").read_text())
    assert len(searches["runs"]) == 3 * 2 * out["search_options"]["seeds"] and searches["options"]["top_k"] == 3
    results = json.loads((tmp_path / "ranking" / "results.json").read_text())
    assert results["summary"] == out


def test_ranking_chain_scores_window_architectures_under_every_supernet_variant(tmp_path):
    shared_data("cifar10")
    out = run_smoke("experiments/bench/ranking_chain.py", "--work", str(tmp_path / "work"))
    variants = [(r["sharing"], r["schedule"], r["label_smoothing"]) for r in out["rows"]]
    assert variants == [(s, lr, 0.0) for s in ("separate", "entangled") for lr in ("constant", "cosine")] + [("separate", "constant", 0.1)]
    assert all(r["space"] == "cifar-small" and r["archs"] == 3 and -1 <= r["kendall_tau_signal"] <= 1 for r in out["rows"])
    assert out["seeds"] == 2 and 0 <= out["arch_variance_share"] <= 1 and out["arch_sd_pp"] >= 0 and out["seed_sd_pp"] >= 0
    jobs = json.loads((tmp_path / "work" / "results.json").read_text())["jobs"]  # cached as they finish: a rerun trains nothing again
    assert sum(k.startswith("standalone/") for k in jobs) == 3 * 2 and sum(k.startswith("supernet/") for k in jobs) == 5
    assert all(0 <= v["val_acc"] <= 1 for k, v in jobs.items() if k.startswith("standalone/"))


@pytest.mark.integration
def test_latency_accuracy_tells_drift_from_bias_on_a_finished_run(tiny_sweep):
    """``--run``: a finished run's shipped files timed beside its tables' yardsticks (2 per target)."""
    _, run_dir, _ = tiny_sweep
    out = run_smoke("experiments/bench/latency_accuracy.py", "--run", str(run_dir))
    targets = {t["target"]: t for t in out["targets"]}
    assert set(targets) == {"ort-cpu-1t", "executorch-xnnpack-1t-b16"} and all(t["n"] == 2 for t in targets.values())
    assert all(t["drift_factor"] > 0 and t["bias_factor"] > 0 for t in targets.values())
    assert out["drift_factor"] > 0 and out["bias_factor"] > 0 and (run_dir / "drift_bias.parquet").is_file()
