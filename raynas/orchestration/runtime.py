"""Joining a Ray cluster, or starting a local one whose node plays every configured target."""

from __future__ import annotations

import os

import ray

from raynas.hardware.targets import get_target


class ClusterError(RuntimeError):
    """The cluster cannot run this experiment (e.g. no node carries a target's label)."""


def target_resources(target_names: list[str], capacity: int = 1000) -> dict[str, float]:
    """Custom resources that mark a node as able to measure these targets."""
    return {get_target(n).resource: float(capacity) for n in target_names}


def connect(address: str | None, num_cpus: int | None, target_names: list[str]) -> bool:
    """Use a running Ray, join ``address`` / RAY_ADDRESS / a local cluster, else start one. True if started here."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        try:
            ray.init(address=address or "auto", include_dashboard=False, log_to_driver=True)
        except ConnectionError:
            if address:
                raise ClusterError(f"cannot reach the Ray cluster at {address!r}; start it (ray up / ray start) or unset the address") from None
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, resources=target_resources(target_names))
            started = True
    _check_targets(target_names)
    return started


def _check_targets(target_names: list[str]) -> None:
    """Every target needs a node with its label and with what its backend measures on (a GPU, say)."""
    available = ray.cluster_resources()
    for name in target_names:
        target = get_target(name)
        if available.get(target.resource, 0) <= 0:
            raise ClusterError(f"no Ray node offers {target.resource}; add it to the resources of the nodes that have that hardware")
        gpus = target.task_resources().get("num_gpus", 0)
        if gpus and available.get("GPU", 0) < gpus:
            raise ClusterError(f"target {name!r} measures on a GPU but this Ray cluster has none; add a GPU node labelled {target.resource}")
