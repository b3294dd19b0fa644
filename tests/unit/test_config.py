import re
from pathlib import Path

import pytest

from raynas.cli import parse_overrides
from raynas.config import ConfigError, load_config, parse_config
from tests.conftest import shared_data

CONFIGS = sorted(Path(__file__).resolve().parents[2].joinpath("experiments", "configs").glob("*.yaml"))


def minimal(**extra):
    return {"name": "t", "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}], **extra}


ON_DISK = {"cifar10", "imagenet"}  # configs that read a dataset from a path absent here
PUBLISHED_TABLE = {"proxyless-mobile-pixel1"}  # reads a table from ../shared/data too: tests/unit/test_cli_run.py
SHARED_CIFAR = {p.stem for p in CONFIGS if p.stem.startswith("cifar10-")}  # read ${RAYNAS_DATA:-../shared/data}/cifar10
NB201 = {p.stem for p in CONFIGS if p.stem.startswith("nb201-")}  # read the tabular benchmark and CIFAR-10 from ../shared/data


@pytest.mark.parametrize(
    "path", [p for p in CONFIGS if p.stem not in ON_DISK | PUBLISHED_TABLE | SHARED_CIFAR | NB201], ids=lambda p: p.stem
)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.targets and cfg.search.search_epochs > 0


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem in SHARED_CIFAR], ids=lambda p: p.stem)
def test_cifar10_configs_read_the_shared_data(path, tmp_path):
    cfg = load_config(path, {"data.root": str(tmp_path)})
    assert cfg.data.dataset == "cifar10" and cfg.evaluation.seeds >= 3 and len(cfg.targets) == 2
    root = shared_data("cifar10")
    assert load_config(path).data.root == str(root)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem in NB201], ids=lambda p: p.stem)
def test_nb201_configs_search_cells_on_tabular_targets(path):
    table = shared_data("nb201-hw") / "nb201_hw.csv"
    shared_data("cifar10")
    cfg = load_config(path)
    assert cfg.space == "nb201" and all(t.estimate.lookup == str(table) for t in cfg.targets)
    assert cfg.blackbox.evaluations > 1 and cfg.evaluation.seeds >= 3


@pytest.mark.faults
@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem in ON_DISK], ids=lambda p: p.stem)
def test_on_disk_configs_are_valid_but_name_their_missing_dataset_root(path, tmp_path):
    with pytest.raises(ConfigError, match="config field data.root"):
        load_config(path)
    cfg = load_config(path, {"data.root": str(tmp_path)})
    assert cfg.data.root == str(tmp_path)


def test_defaults_fill_unspecified_sections():
    cfg = parse_config(minimal())
    assert cfg.space == "mnist-small" and cfg.data.dataset == "mnist-embedded"
    assert cfg.targets[0].budget_fractions == (0.5,)


@pytest.mark.parametrize(
    "raw, field",
    [
        (minimal(serach={}), "serach"),
        (minimal(search={"warmup_epochs": "two"}), "search.warmup_epochs"),
        (minimal(search={"weight_lr": -1.0}), "search.weight_lr"),
        (minimal(search={"latency_loss": "pow"}), "search.latency_loss"),
        (minimal(search={"binarization": "three"}), "search.binarization"),
        (minimal(search={"weight_optimizer": "lion"}), "search.weight_optimizer"),
        (minimal(search={"budget_floor": 1.5}), "search.budget_floor"),
        (minimal(space="imagenet-huge"), "space"),
        (minimal(data={"dataset": "cifar10", "root": "/nonexistent"}), "data.root"),
        ({"name": "t", "targets": [{"name": "tpu-v9", "budgets_ms": [1.0]}]}, "targets[0].name"),
        ({"name": "t", "targets": [{"name": "cpu-1t", "budgets_ms": [-1.0]}]}, "targets[0].budgets_ms"),
        ({"name": "t", "targets": [{"name": "cpu-1t"}]}, "targets[0]"),
        ({"name": "t", "targets": [{"name": "cpu-1t", "budgets_ms": [1.0], "budget_fractions": [0.5]}]}, "targets[0]"),
        ({"name": "t", "targets": [{"name": "cpu-1t", "budget_fractions": [1.5]}]}, "targets[0].budget_fractions"),
        ({"name": "t", "targets": []}, "targets"),
        ({"targets": [{"name": "cpu-1t", "budgets_ms": [1.0]}]}, "name"),
        (minimal(compute={"device": "tpu"}), "compute.device"),
        (minimal(compute={"precision": "fp8"}), "compute.precision"),
        (minimal(compute={"precision": "fp16"}), "compute.precision"),
        (minimal(compute={"device": "cpu", "precision": "fp16"}, ray={"gpus_per_trial": 1}), "compute.precision"),
        (minimal(compute={"device": "cuda"}), "ray.gpus_per_trial"),
        (minimal(ray={"gpus_per_trial": 1.5}), "ray.gpus_per_trial"),
        (minimal(ray={"gpus_per_task": -1}), "ray.gpus_per_task"),
        (minimal(ofa={"replica_gpus": 2.5}), "ofa.replica_gpus"),
        (minimal(data={"num_workers": -1}), "data.num_workers"),
        (minimal(data={"eval_limit": 0}), "data.eval_limit"),
        (minimal(data={"test_limit": 0}), "data.test_limit"),
        (minimal(data={"in_memory": "yes"}), "data.in_memory"),
        (minimal(search={"search_epochs": 0}), "search.search_epochs"),  # a phase with nothing to do
        (minimal(retrain={"epochs": 0}), "retrain.epochs"),
        (minimal(data={"batch_size": 0}), "data.batch_size"),
        (minimal(data={"limit": 0}), "data.limit"),
        (minimal(ofa={"shrink": {"width_epochs": 0}}), "ofa.shrink.width_epochs"),
        (minimal(ofa={"predictor_samples": 0}), "ofa.predictor_samples"),
        (minimal(ofa={"evolution": {"generations": 0}}), "ofa.evolution.generations"),
        (minimal(ofa={"replicas": 0}), "ofa.replicas"),
        (minimal(ofa={"replica_cpus": 0}), "ofa.replica_cpus"),
        (minimal(evaluation={"seeds": 0}), "evaluation.seeds"),
        (minimal(supernet={"sharing": "tied"}), "supernet.sharing"),
        (minimal(ray={"workers_per_trial": 0}), "ray.workers_per_trial"),
        (minimal(ray={"workers_per_trial": 3}, data={"batch_size": 32}), "data.batch_size"),  # the global batch does not split
        (minimal(ray={"workers_per_task": 3}, data={"batch_size": 32}), "data.batch_size"),
        (minimal(ray={"workers_per_trial": 2, "gpus_per_trial": 0.5}), "ray.gpus_per_trial"),  # NCCL: one rank per GPU
        (minimal(strategy="petridish", ray={"workers_per_task": 2}), "ray.workers_per_task"),  # Petridish has no such task
        (
            minimal(evaluation={"asha": {"enabled": True, "scheduler": "hyperband"}}, ray={"workers_per_trial": 2}),
            "evaluation.asha.scheduler",  # HyperBand pauses trials; a Train job is stopped only by its own loop
        ),
        (minimal(compute={"batch_norm": "sync"}), "compute.batch_norm"),
    ],
)
@pytest.mark.faults
def test_bad_fields_are_named(raw, field):
    with pytest.raises(ConfigError, match=re.escape(f"config field {field}") + "[: ]"):
        parse_config(raw)


@pytest.mark.faults
def test_unknown_target_lists_valid_ones():
    with pytest.raises(ConfigError, match="valid: cpu-1t, cpu-1t-b16, cpu-1t-b16-tuned, cpu-all"):
        parse_config({"name": "t", "targets": [{"name": "tpu", "budgets_ms": [1.0]}]})


def test_overrides_apply_dotted_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\ntargets: [{name: cpu-1t, budgets_ms: [2.0]}]\n")
    cfg = load_config(path, parse_overrides(["search.search_epochs=7", "data.limit=100"]))
    assert cfg.search.search_epochs == 7 and cfg.data.limit == 100
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        parse_overrides(["oops"])


@pytest.mark.faults
def test_missing_or_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


@pytest.mark.faults
def test_odd_keys_are_named_readably():
    with pytest.raises(ConfigError, match=re.escape("config field '\\n': unknown key")):
        parse_config(minimal(**{"\n": None}))
    with pytest.raises(ConfigError, match="config field 1: unknown key"):
        parse_config({**minimal(), 1: 2, "zz": 3})


@pytest.mark.faults
@pytest.mark.parametrize(
    "estimate,field",
    [
        ({}, "targets[0].estimate"),
        ({"table": "t.yaml", "device": {"name": "d", "peak_gflops": 1.0, "bandwidth_gbs": 1.0}}, "targets[0].estimate"),
        ({"table": "/nonexistent/pixel1.yaml"}, "targets[0].estimate.table"),
        ({"device": {"name": "d", "peak_gflops": 0.0, "bandwidth_gbs": 1.0}}, "targets[0].estimate.device"),
    ],
)
def test_estimated_targets_need_exactly_one_valid_source(estimate, field):
    with pytest.raises(ConfigError, match=re.escape(f"config field {field}:")):
        parse_config({"name": "t", "targets": [{"name": "pixel1", "budgets_ms": [5.0], "estimate": estimate}]})


def test_an_estimated_target_may_have_any_name(tmp_path):
    cfg = parse_config(
        {
            "name": "t",
            "targets": [
                {
                    "name": "pixel1",
                    "budgets_ms": [5.0],
                    "estimate": {"device": {"name": "pixel1", "peak_gflops": 10.0, "bandwidth_gbs": 5.0}},
                }
            ],
        }
    )
    assert cfg.targets[0].estimated and cfg.targets[0].estimate.device.peak_gflops == 10.0


def test_gpu_settings_parse_with_fractions_and_whole_numbers():
    cfg = parse_config(
        minimal(
            compute={"device": "cuda", "precision": "fp16", "channels_last": True},
            ray={"gpus_per_trial": 0.25, "gpus_per_task": 2},
            ofa={"replica_gpus": 0.5},
        )
    )
    assert (cfg.ray.gpus_per_trial, cfg.ray.gpus_per_task, cfg.ofa.replica_gpus) == (0.25, 2.0, 0.5)
    assert cfg.compute.precision == "fp16" and cfg.compute.channels_last
