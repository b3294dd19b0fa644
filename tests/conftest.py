"""Shared fixtures: one small local Ray per test session, real SQLite MLflow stores in tmp dirs."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


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
