"""Search every hardware target and budget of a config; the script to give ``ray submit``.

    python experiments/run_all_targets.py --config experiments/configs/smoke.yaml
    python experiments/run_all_targets.py --resume runs/smoke-20261123-091500   # after the driver died
    ray submit cluster/cluster.yaml experiments/run_all_targets.py -- --config experiments/configs/cifar10.yaml

Joins the running Ray cluster when there is one (RAY_ADDRESS or a local head), else starts a
local Ray. Prints the result and comparison tables, then the paths: the run directory, the report,
MLflow and ``results.json`` (every result row).
"""

from __future__ import annotations

import sys

from raynas.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
