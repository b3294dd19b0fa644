"""Running a multi-node scenario in a fresh interpreter: a ``ray.cluster_utils.Cluster`` cannot share a
process with the session Ray. The script prints one JSON object as its last line."""

from __future__ import annotations

import json
import subprocess
import sys


def run_json_script(script: str, *args: str, timeout: int = 600) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
