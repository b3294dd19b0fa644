"""Joining a Ray cluster, or starting a local one whose node plays every configured target."""

from __future__ import annotations

import os
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raynas.compute import Compute, ComputeConfig
from raynas.config import ExperimentConfig
from raynas.hardware.targets import get_target


class ClusterError(RuntimeError):
    """The cluster cannot run this experiment (e.g. no node carries a target's label)."""


def tune_storage(cfg: ExperimentConfig, run_dir: Path) -> str:
    """Where Tune keeps trial results and checkpoints: ``ray.storage_path/<run>`` or ``<run_dir>/tune``."""
    if cfg.ray.storage_path is None:
        return str(run_dir / "tune")
    return f"{cfg.ray.storage_path.rstrip('/')}/{run_dir.name}"


def target_resources(target_names: list[str], capacity: int = 1000) -> dict[str, float]:
    """Custom resources that mark a node as able to measure these targets."""
    return {get_target(n).resource: float(capacity) for n in target_names}


def connect(address: str | None, num_cpus: int | None, target_names: list[str]) -> bool:
    """Use a running Ray, join ``address`` / RAY_ADDRESS / a local cluster, else start one (``address:
    local`` always starts one, beside any other on this machine). True if started here."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        if address == "local":
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, resources=target_resources(target_names))
            _check_targets(target_names)
            return True
        try:
            ray.init(address=address or "auto", include_dashboard=False, log_to_driver=True)
        except ConnectionError:
            if address:
                raise ClusterError(
                    f"cannot reach the Ray cluster at {address!r}; start it (ray up / ray start) or unset the address"
                ) from None
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
            raise ClusterError(
                f"target {name!r} measures on a GPU but this Ray cluster has none; add a GPU node labelled {target.resource}"
            )


def worker_compute(cfg: ComputeConfig) -> Compute:
    """The device rule inside a Ray trial, task or actor: CUDA when Ray granted it a GPU, else the CPU."""
    return Compute.from_config(cfg, gpu_granted=bool(ray.get_gpu_ids()))


def check_gpus(requests: dict[str, float]) -> None:
    """Refuse GPU reservations (config field -> GPUs per trial/task/actor) that no node of the cluster can meet."""
    wanted = {field: n for field, n in requests.items() if n > 0}
    if not wanted:
        return
    per_node = max((n["Resources"].get("GPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
    for field, n in wanted.items():
        if per_node == 0:
            raise ClusterError(
                f"config field {field}: asks for {n:g} GPU(s) but no node of this Ray cluster has a GPU; "
                "set it to 0 to train on CPUs, or add GPU nodes (cluster/cluster.yaml: gpu_worker)"
            )
        if n > per_node:
            raise ClusterError(f"config field {field}: asks for {n:g} GPUs but the largest node has {per_node:g}; lower it")


def check_cpus(held: dict[str, float], trial_cpus: float) -> None:
    """Refuse actors (config field -> CPUs they hold through the searches) that leave no room for one
    search trial of ``trial_cpus``: Ray would queue the trial, or the last actors, forever."""
    fields, cpus = [f for f, n in held.items() if n], sum(held.values())
    total = sum(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"])
    if fields and cpus + trial_cpus > total:
        named = ", ".join(fields)
        raise ClusterError(
            f"config field {named}: its actors hold {cpus:g} CPUs through the searches "
            f"and a search trial needs ray.cpus_per_trial = {trial_cpus:g}, "
            f"but the cluster has {total:g} CPUs; lower {named} (a replica's CPU share is a reservation, not a thread count) or add nodes"
        )


@ray.remote(num_cpus=0, max_retries=0)
def _has_directory(path: str) -> bool:
    return os.path.isdir(os.path.expanduser(path))


def trial_nodes() -> list[dict]:
    """Alive nodes that can run trials or training tasks (they offer CPUs or GPUs)."""
    return [n for n in ray.nodes() if n["Alive"] and (n["Resources"].get("CPU", 0) > 0 or n["Resources"].get("GPU", 0) > 0)]


def check_data_root(path: str, probe=_has_directory) -> None:
    """``data.root`` must exist on every node that may run a trial: one task per node looks, and the
    nodes that lack it are named before anything trains (else each trial fails ``max_failures`` times)."""
    nodes = trial_nodes()
    found = ray.get(
        [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(path) for n in nodes]
    )
    missing = [f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})" for n, ok in zip(nodes, found) if not ok]
    if missing:
        raise ClusterError(
            f"config field data.root: {path} is missing on {len(missing)} of {len(nodes)} nodes that run trials: {', '.join(missing)}; "
            "put the dataset at the same path on every node, or on shared storage (cluster/README.md)"
        )


def check_writable(paths: dict[str, str | None]) -> None:
    """Every folder raynas will write (config field -> path; None or a URI: skipped) can be created and
    written, or one error names the field, before anything runs."""
    for field, path in paths.items():
        if not path or "://" in path:
            continue
        folder = Path(path).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".raynas-write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ClusterError(
                f"config field {field}: cannot create or write {folder} ({exc.strerror or exc}); point it at a writable folder"
            ) from None


NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "glusterfs", "ceph", "9p", "fuse.")


def check_storage(storage_path: str, machines: int | None = None) -> None:
    """Tune storage must be reachable from every node: refuse a node-local path on a multi-machine cluster."""
    check_shared({"ray.storage_path": storage_path}, machines)


SHARED_BECAUSE = {
    "ray.storage_path": "trials on other nodes could not save or restore there",
    "run_root": (
        "trials on other nodes write the run's decoded-image cache there, "
        "and the run's outputs belong where every node and user can read them"
    ),
    "data.cache_dir": "trials on other nodes would each decode the dataset into their own copy",
}


def check_shared(paths: dict[str, str | None], machines: int | None = None) -> None:
    """Folders that processes on several nodes share (config field -> path; None or a cloud URI: fine)
    must not be node-local on a multi-machine cluster. ``machines`` defaults to the distinct addresses
    of the alive Ray nodes (a simulated cluster on one machine shares its filesystem and passes)."""
    if machines is None:
        machines = len({n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]})
    if machines < 2:
        return
    for field, value in paths.items():
        scheme, sep, rest = (value or "").partition("://")
        if not value or (sep and scheme != "file"):
            continue
        fs = filesystem_type(Path(rest if sep else value))
        if not fs.startswith(NETWORK_FILESYSTEMS):
            raise ClusterError(
                f"config field {field}: {value} is on a node-local {fs} filesystem, but this cluster spans {machines} machines: "
                f"{SHARED_BECAUSE.get(field, 'other nodes could not reach it')}. Set it to a directory on NFS/EFS mounted on every node"
                f"{' or a cloud URI (s3://bucket/raynas)' if field == 'ray.storage_path' else ''} (cluster/README.md)"
            )


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (longest mount-point prefix in /proc/mounts)."""
    path, best, kind = path.resolve(), "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and (path == Path(parts[1]) or Path(parts[1]) in path.parents) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


def cluster_cpus() -> int:
    """CPUs of the largest alive node: a single task cannot span nodes."""
    return max(1, int(max(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"])))
