"""``raynas run`` on the NB201 cell space: a tabular target (the benchmark's per-architecture latency,
an estimate), regularized evolution whose candidates train standalone on CIFAR-10 as Tune trials,
its black-box random baseline, NB201's ResNet cell as the hand-designed reference, retraining,
results and MLflow; smoke-sized."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from raynas.api import HAND, RANDOM, strategy_class
from raynas.config import ConfigError, parse_config
from raynas.execution.schedulers import PerScenario
from raynas.hardware.tabular import TabularBenchmark
from raynas.orchestration.pipeline import new_run_dir, run_experiment
from raynas.space.architecture import Architecture
from raynas.space.catalog import hand_designed
from raynas.space.nb201 import Cell
from raynas.strategies.blackbox import early_stopping
from tests.conftest import shared_data

pytestmark = pytest.mark.integration
DEVICE = "pixel3"


def nb201_config(root, store: str, *, data: str, table: str, **extra) -> dict:
    return {
        "name": "nb201-evolution",
        "space": "nb201",
        "strategy": "evolution",
        "run_root": str(root),
        "targets": [{"name": DEVICE, "budget_fractions": [0.3], "estimate": {"lookup": table}}],
        "data": {"dataset": "cifar10", "root": data, "limit": 128, "eval_limit": 64, "batch_size": 32},
        "retrain": {"epochs": 1},
        "blackbox": strategy_class("evolution").smoke,
        "ray": {"max_concurrent_trials": 1},
        "tracking": {"mlflow_uri": store, "experiment": "nb201"},
    } | extra


@pytest.fixture(scope="module")
def nb201_run(ray_session, tmp_path_factory, sqlite_store):
    cifar, table = shared_data("cifar10"), shared_data("nb201-hw") / "nb201_hw.csv"
    root = tmp_path_factory.mktemp("nb201-runs")
    cfg = parse_config(nb201_config(root, sqlite_store(root / "mlflow.db"), data=str(cifar), table=str(table)))
    run_dir = new_run_dir(cfg)
    return cfg, run_dir, run_experiment(cfg, run_dir, log=lambda _: None), TabularBenchmark.load(table)


def test_evolution_on_nb201_picks_within_budget_beside_random_and_resnet(nb201_run):
    cfg, run_dir, summary, bench = nb201_run
    rows = summary["results"]
    assert {r["method"] for r in rows} == {"evolution", RANDOM, HAND}
    latency = bench.latency(DEVICE)
    for r in rows:
        arch = Architecture.from_string("nb201", r["arch"])
        assert r["estimated"] and r["measured_ms"] is None and r["predicted_ms"] == pytest.approx(latency.predict(arch), abs=1e-4)
        if r["method"] != HAND:
            assert r["predicted_ms"] <= r["budget_ms"] + 1e-9 and r["evaluations"] == cfg.blackbox.evaluations
    [hand] = [r for r in rows if r["method"] == HAND]
    assert hand["key"] == f"{HAND}:resnet#s0"
    record = json.loads((run_dir / "record.json").read_text())
    assert record["hardware"][DEVICE]["provenance"] == "tabular lookup"
    assert "regularized evolution" in (run_dir / "report.md").read_text()
    curves = json.loads((run_dir / "curves.json").read_text())
    assert {c["method"] for c in curves} == {"evolution", RANDOM}
    runs = MlflowClient(summary["mlflow_uri"]).search_runs(
        [MlflowClient(summary["mlflow_uri"]).get_experiment_by_name("nb201").experiment_id]
    )
    assert {r.data.tags.get("raynas.method") for r in runs} >= {"evolution", RANDOM, HAND}
    [model] = MlflowClient(summary["mlflow_uri"]).search_registered_models()  # the search's pick; baselines are not registered
    assert model.name.startswith(f"nb201-{DEVICE}-")


def test_a_cell_space_refuses_supernet_strategies_and_measured_targets(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("index,arch\n")
    base = nb201_config(tmp_path, "sqlite:///x.db", data=str(tmp_path), table=str(table))
    with pytest.raises(ConfigError, match="strategy: 'proxyless' searches MBConv chain spaces only"):
        parse_config(base | {"strategy": "proxyless"}, check_data=False)
    with pytest.raises(ConfigError, match=r"targets\[0\].estimate.lookup: space 'nb201' needs a tabular benchmark"):
        parse_config(base | {"targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}]}, check_data=False)
    with pytest.raises(ConfigError, match="a tabular lookup holds cells"):
        parse_config(base | {"space": "mnist-small"}, check_data=False)
    with pytest.raises(ConfigError, match="evaluation.asha.enabled: the ASHA baseline samples MBConv chains"):
        parse_config(base | {"evaluation": {"asha": {"enabled": True}}}, check_data=False)
    with pytest.raises(ConfigError, match="blackbox.scheduler: early stopping suits strategy: random only"):
        parse_config(base | {"blackbox": {"scheduler": "asha"}}, check_data=False)
    random_asha = parse_config(base | {"strategy": RANDOM, "blackbox": {"scheduler": "asha", "epochs": 3}}, check_data=False)
    stopper = early_stopping(random_asha.blackbox, ["a", "b"])
    assert isinstance(stopper, PerScenario) and set(stopper.inner) == {"a", "b"}  # each scenario's candidates race only each other
    assert early_stopping(parse_config(base, check_data=False).blackbox, ["a"]) is None


def test_nb201_hand_designed_reference_is_the_resnet_block():
    [(name, arch)] = hand_designed("nb201", (1.0,)).items()
    cell = Cell(arch.ops)
    assert name == "resnet" and cell.connected and cell.ops.count("nor_conv_3x3") == 2 and cell.ops[-1] == "skip_connect"
    assert hand_designed("nb201", ()) == {}  # evaluation.hand_designed_widths: [] turns references off
