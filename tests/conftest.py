"""Shared fixtures: one small local Ray per test session, real SQLite MLflow stores in tmp dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SHARED_DATA = Path(os.environ.get("RAYNAS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    """``needs_cuda`` tests skip, with the reason, on machines without a CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch here)")
    for item in items:
        if "needs_cuda" in item.keywords:
            item.add_marker(skip)


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

    from raynas.hardware.targets import TARGETS
    from raynas.orchestration.runtime import target_resources

    ray.init(address="local", num_cpus=2, include_dashboard=False, resources=target_resources(TARGETS.names()), log_to_driver=False)
    yield ray
    ray.shutdown()
