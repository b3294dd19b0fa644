"""Running a multi-node scenario in a fresh interpreter: a ``ray.cluster_utils.Cluster`` cannot share a
process with the session Ray. The script prints one JSON object as its last line."""

from __future__ import annotations

import json
import subprocess
import sys

# A hang detector, not a timing: a script that takes 1.5 min alone took over 10 beside a long benchmark.
HANG_SECONDS = 1500


def run_json_script(script: str, *args: str, timeout: int = HANG_SECONDS) -> dict:
    return run_json([sys.executable, "-c", script, *args], timeout=timeout)


def run_json(argv: list[str], *, timeout: int = HANG_SECONDS, **popen) -> dict:
    """Run ``argv``, require exit status 0 (else show its stderr), return its last stdout line as JSON."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **popen)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
