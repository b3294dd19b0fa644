"""Shared fixtures: one small local Ray per test session, real SQLite MLflow stores in tmp dirs."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from raynas.data.sources import shared_data_root
from tests import background

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Tests share two cores with Ray's workers (and, on a busy machine, with other processes): one
# intra-op thread here, as every Ray trial has, keeps OpenMP from spin-waiting on a taken core.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = shared_data_root()


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only selected tests start their runs
def pytest_collection_modifyitems(config, items):
    """``needs_cuda`` tests skip, with the reason, on machines without a CUDA GPU; tests marked
    ``background`` (tests/background.py) start their runs now and move to the end; the rest run in
    ``_stage`` order."""
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch here)")
        for item in (i for i in items if "needs_cuda" in i.keywords):
            item.add_marker(skip)
    if config.option.collectonly:
        return
    waiting = [i for i in items if i.get_closest_marker("background") and not i.get_closest_marker("skip")]
    for job in dict.fromkeys(job for i in waiting for job in i.get_closest_marker("background").args):
        background.submit(job)
    last = set(waiting)
    items[:] = sorted((i for i in items if i not in last), key=_stage) + waiting


PIPELINES = ("petridish_run", "ofa_run", "tiny_sweep")  # the session's shared pipeline runs, in the order they run


def _stage(item) -> int:
    """Where a test runs: the one-core unit and contract tests first and the other tests that use less
    than both cores next, while the background runs take the rest of the machine; the pipeline runs
    last, the tiny sweep (two trials at a time) at the very end, when the background runs are done."""
    if item.path.is_relative_to(ROOT / "tests" / "unit") or item.path.is_relative_to(ROOT / "tests" / "contract"):
        return 0
    return next((2 + i for i, name in enumerate(PIPELINES) if name in item.fixturenames), 1)


def pytest_sessionfinish(session, exitstatus):
    background.finish()


def pytest_terminal_summary(terminalreporter):
    if background.seconds:
        terminalreporter.write_sep("=", "background runs (wall-clock, beside the other tests)")
        for key, took in background.seconds.items():
            terminalreporter.write_line(f"{took:8.2f}s {key}")


def shared_data(name: str) -> Path:
    """A folder of the real datasets (``RAYNAS_DATA`` or ../shared/data); skips the test when absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent (real data lives in ../shared/data or $RAYNAS_DATA; users' clones have none)")
    return path


@pytest.fixture(autouse=True)
def _seeded_rng():
    """Each test starts from the same torch RNG state and leaves the global one as it found it."""
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    yield
    torch.random.set_rng_state(state)


@pytest.fixture(scope="session")
def ray_session():
    """A 2-CPU local Ray whose node offers every registered target's label; started once."""
    import ray

    from raynas.execution.runtime import target_resources
    from raynas.hardware.targets import TARGETS

    ray.init(address="local", num_cpus=2, include_dashboard=False, resources=target_resources(TARGETS.names()), log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def sqlite_store(tmp_path_factory):
    """``sqlite_store(path)``: the URI of a new, empty SQLite MLflow store at ``path``, a copy of one
    whose schema MLflow created once this session (its migrations take 1-2 s of CPU per new file)."""
    template = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{template}").search_experiments()

    def store(path: Path) -> str:
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"

    return store


def load_script(relative: str):
    """An experiment script (not a package module) loaded as a module, to call its functions in-process."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass in it looks its module up
    spec.loader.exec_module(module)
    return module


TINY_SWEEP = {
    "name": "tiny",
    "targets": [{"name": "ort-cpu-1t", "budget_fractions": [0.5]}, {"name": "executorch-xnnpack-1t-b16", "budget_fractions": [0.5]}],
    "data": {"limit": 128, "eval_limit": 128, "batch_size": 32},
    "search": {"warmup_epochs": 1, "search_epochs": 2, "eval_batches": 2},
    "retrain": {"epochs": 1},
    "profile": {"warmup": 2, "repeats": 10, "calibration_archs": 1, "settle_seconds": 0},
    "evaluation": {
        "seeds": 2,
        "hand_designed_widths": [0.5],
        "asha": {"enabled": True, "max_epochs": 2, "eval_batches": 2, "candidates": 6},
    },
}


@pytest.fixture(scope="session")
def tiny_sweep(ray_session, tmp_path_factory, sqlite_store):
    """The tiny ProxylessNAS pipeline (2 targets x 1 budget x 2 seeds; random, ASHA and hand-designed
    baselines), run once through experiments/budget_sweep.py from a YAML config, and shared by every
    test that only reads its outputs. Returns (summary, run directory, printed lines)."""
    root = tmp_path_factory.mktemp("runs")
    config = root / "tiny.yaml"
    tracking = {"mlflow_uri": sqlite_store(root / "mlflow.db"), "experiment": "tiny"}
    config.write_text(
        yaml.safe_dump(
            TINY_SWEEP
            | {"run_root": str(root), "tracking": tracking, "profile": TINY_SWEEP["profile"] | {"cache_dir": str(root / "opcache")}}
        )
    )
    sweep, printed = load_script("experiments/budget_sweep.py"), io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary = sweep.run_sweep(sweep.sweep_config(str(config), {}, None, None, False), log=lambda _: None)
    lines = printed.getvalue().strip().splitlines()
    return summary, Path(json.loads(lines[-1])["run_dir"]), lines
