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

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster" / "cluster.yaml"
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def test_cluster_yaml_is_a_valid_launcher_config():
    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    jsonschema.validate(raw, SCHEMA)
    validate_config(prepare_config(copy.deepcopy(raw)))


def test_worker_labels_name_registered_targets():
    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    labels = {k for node in raw["available_node_types"].values() for k in node.get("resources", {}) if k.startswith("raynas_target:")}
    assert labels and {label.split(":", 1)[1] for label in labels} <= set(TARGETS.names())


def test_schema_check_is_not_vacuous():
    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    raw["available_node_types"]["head"]["bogus_field"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, SCHEMA)
