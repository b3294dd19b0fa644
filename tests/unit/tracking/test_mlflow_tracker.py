import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from raynas.tracking.mlflow_tracker import ExperimentTracker, TrackingError


@pytest.mark.faults
def test_unreachable_tracking_server_fails_fast_naming_the_uri(tmp_path):
    start = time.perf_counter()
    with pytest.raises(TrackingError, match=r"http://127.0.0.1:9 is unreachable"):
        ExperimentTracker("http://127.0.0.1:9", "x", tmp_path, run_name="run")
    assert time.perf_counter() - start < 10


@pytest.mark.faults
def test_a_server_that_is_not_healthy_is_refused(tmp_path):
    class Unhealthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(503)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Unhealthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TrackingError, match="503"):
            ExperimentTracker(f"http://127.0.0.1:{server.server_port}", "x", tmp_path, run_name="run")
    finally:
        server.shutdown()


def test_sqlite_store_has_one_child_per_key(tmp_path, sqlite_store):
    uri = sqlite_store(tmp_path / "mlflow.db")
    tracker = ExperimentTracker(uri, "exp", tmp_path, run_name="parent")
    assert tracker.child("a") == tracker.child("a") != tracker.child("b")
    tracker.finish()
    runs = MlflowClient(uri).search_runs([tracker.experiment_id])
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)


def test_a_second_tracker_on_the_same_run_dir_reuses_parent_and_children(tmp_path, sqlite_store):
    uri = sqlite_store(tmp_path / "mlflow.db")
    first = ExperimentTracker(uri, "exp", tmp_path / "run", run_name="run")
    child = first.child("proxyless:cpu-1t@1.000ms#s0")
    again = ExperimentTracker(uri, "exp", tmp_path / "run", run_name="run")
    assert again.resumed and not first.resumed and again.parent_id == first.parent_id
    assert again.child("proxyless:cpu-1t@1.000ms#s0") == child
    other = ExperimentTracker(uri, "exp", tmp_path / "other-run", run_name="other-run")
    assert other.parent_id != first.parent_id and other.children == {}
    assert len(MlflowClient(uri).search_runs([first.experiment_id])) == 3


@pytest.mark.faults
def test_server_lost_mid_run_switches_to_offline_and_leaves_a_marker(tmp_path, sqlite_store):
    """A real `mlflow server` is stopped mid-run: writes stop failing the run, a marker says how to sync."""
    port = _free_port()
    # Without MLflow's server-side job runner (huey consumers: half of the server's start-up CPU), which raynas never uses.
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            sqlite_store(tmp_path / "server.db"),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(uri)
        tracker = ExperimentTracker(uri, "exp", tmp_path / "run", run_name="run")
        run_id = tracker.child("a")
        tracker.log_metrics(run_id, {"x": 1.0})
    finally:  # the server dies as a crashed one does: its process group at once, no graceful shutdown
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(30)
    (tmp_path / "run").mkdir()
    start = time.perf_counter()
    tracker.log_metrics(run_id, {"x": 2.0})
    assert tracker.offline and tracker.child("b") == "offline"
    tracker.log_metrics(run_id, {"x": 3.0})  # offline: no further attempts, no exception
    tracker.finish()
    assert time.perf_counter() - start < 60
    assert f"raynas sync-mlflow {tmp_path / 'run'}" in (tmp_path / "run" / "mlflow-pending.txt").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(uri: str, timeout: float = 60) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {uri} did not start")


def test_a_failed_run_ends_failed_with_its_reason(tmp_path, sqlite_store):
    uri = sqlite_store(tmp_path / "mlflow.db")
    tracker = ExperimentTracker(uri, "x", tmp_path, run_name="run")
    tracker.fail("ClusterError: config field ray.gpus_per_trial: no GPU")
    run = MlflowClient(uri).get_run(tracker.parent_id)
    assert run.info.status == "FAILED" and run.data.tags["raynas.failure"].startswith("ClusterError: config field ray.gpus_per_trial")
