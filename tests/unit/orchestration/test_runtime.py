import pytest

from raynas.execution.runtime import ClusterError, check_storage, filesystem_type


def test_filesystem_type_finds_the_mount_holding_a_path():
    assert filesystem_type(__import__("pathlib").Path("/proc/self")) == "proc"
    assert filesystem_type(__import__("pathlib").Path("/")) not in ("", "unknown")


@pytest.mark.faults
def test_node_local_tune_storage_is_refused_on_a_multi_machine_cluster(tmp_path):
    check_storage(str(tmp_path), machines=1)  # one machine: every node sees this directory
    for local in (str(tmp_path), f"file://{tmp_path}"):
        with pytest.raises(ClusterError, match=r"config field ray.storage_path: .* node-local .* spans 3 machines.*s3://"):
            check_storage(local, machines=3)
    check_storage("s3://bucket/raynas", machines=3)
    check_storage("gs://bucket/raynas", machines=3)


def test_trials_reserve_fractional_gpus_and_tune_accepts_them():
    from ray import tune

    from raynas.config import parse_config
    from raynas.orchestration.rundir import gpu_requests
    from raynas.orchestration.tuner import trial_resources

    cfg = parse_config(
        {
            "name": "t",
            "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}],
            "ray": {"gpus_per_trial": 0.25, "cpus_per_trial": 2, "gpus_per_task": 1},
        }
    )
    assert trial_resources(cfg) == {"cpu": 2, "gpu": 0.25}
    trainable = tune.with_resources(lambda config: None, trial_resources(cfg))
    bundles = trainable._resources.bundles if hasattr(trainable._resources, "bundles") else None
    assert bundles == [{"CPU": 2, "GPU": 0.25}]
    assert gpu_requests(cfg) == {"ray.gpus_per_trial": 0.25, "ray.gpus_per_task": 1.0}
    ofa = parse_config(
        {"name": "t", "strategy": "ofa", "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}], "ofa": {"replica_gpus": 0.5}}
    )
    assert gpu_requests(ofa)["ofa.replica_gpus"] == 0.5


@pytest.mark.faults
def test_folders_that_cannot_be_created_are_named_before_anything_runs(tmp_path):
    from raynas.config import ConfigError, parse_config
    from raynas.execution.runtime import check_writable
    from raynas.orchestration.pipeline import new_run_dir

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    check_writable({"profile.cache_dir": str(tmp_path / "cache"), "data.cache_dir": None, "ray.storage_path": "s3://bucket/x"})
    assert (tmp_path / "cache").is_dir()
    with pytest.raises(ClusterError, match=r"config field profile.cache_dir: cannot create or write .*a-file/ops"):
        check_writable({"profile.cache_dir": str(blocker / "ops")})
    cfg = parse_config({"name": "t", "run_root": str(blocker / "runs"), "targets": [{"name": "cpu-1t", "budget_fractions": [0.5]}]})
    with pytest.raises(ConfigError, match="config field run_root: cannot create"):
        new_run_dir(cfg)


@pytest.mark.faults
def test_node_local_run_root_and_data_cache_are_refused_on_a_multi_machine_cluster(tmp_path):
    from raynas.execution.runtime import check_shared

    paths = {"run_root": str(tmp_path / "runs"), "data.cache_dir": None, "ray.storage_path": "s3://bucket/raynas"}
    check_shared(paths, machines=1)
    with pytest.raises(ClusterError, match=r"config field run_root: .* node-local .* spans 2 machines.*NFS/EFS"):
        check_shared(paths, machines=2)
    with pytest.raises(ClusterError, match=r"config field data.cache_dir: .* node-local"):
        check_shared({"data.cache_dir": str(tmp_path / "cache")}, machines=2)
    check_shared({"profile.cache_dir": None, "data.cache_dir": None}, machines=2)  # unset: nothing to share
