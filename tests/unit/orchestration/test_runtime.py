import pytest

from raynas.orchestration.runtime import ClusterError, check_storage, filesystem_type


def test_filesystem_type_finds_the_mount_holding_a_path():
    assert filesystem_type(__import__("pathlib").Path("/proc/self")) == "proc"
    assert filesystem_type(__import__("pathlib").Path("/")) not in ("", "unknown")


@pytest.mark.faults
def test_node_local_tune_storage_is_refused_on_a_multi_machine_cluster(tmp_path):
    check_storage(str(tmp_path), machines=1)  # one machine: every node sees this directory
    for local in (str(tmp_path), f"file://{tmp_path}"):
        with pytest.raises(ClusterError, match=r"node-local .* spans 3 machines.*ray.storage_path"):
            check_storage(local, machines=3)
    check_storage("s3://bucket/raynas", machines=3)
    check_storage("gs://bucket/raynas", machines=3)
