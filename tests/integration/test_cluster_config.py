"""cluster/cluster.yaml validates against the schema shipped inside the ray package."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from raynas.hardware.targets import TARGETS

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
CLUSTER_YAML = CLUSTER / "cluster.yaml"
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


@pytest.mark.parametrize("name", ["cluster.yaml", "local.yaml"])
def test_cluster_configs_are_valid_launcher_configs(name):
    raw = yaml.safe_load((CLUSTER / name).read_text())
    jsonschema.validate(raw, SCHEMA)
    validate_config(prepare_config(copy.deepcopy(raw)))


@pytest.mark.parametrize("name", ["cluster.yaml", "local.yaml"])
def test_servers_on_the_head_bind_to_private_or_loopback_addresses(name):
    commands = " ".join(yaml.safe_load((CLUSTER / name).read_text())["head_start_ray_commands"])
    assert "0.0.0.0" not in commands and "--dashboard-host=127.0.0.1" in commands
    assert "mlflow server --host $(hostname -I | awk '{print $1}')" in commands


def test_local_provider_names_head_and_worker_machines():
    provider = yaml.safe_load((CLUSTER / "local.yaml").read_text())["provider"]
    assert provider["type"] == "local" and provider["head_ip"] and provider["worker_ips"]


def test_worker_labels_name_registered_targets():
    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    labels = {k for node in raw["available_node_types"].values() for k in node.get("resources", {}) if k.startswith("raynas_target:")}
    assert labels and {label.split(":", 1)[1] for label in labels} <= set(TARGETS.names())


def test_schema_check_is_not_vacuous():
    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    raw["available_node_types"]["head"]["bogus_field"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, SCHEMA)
