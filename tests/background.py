"""Tests whose work is one self-contained subprocess run (their own Ray, no session state) start it at
the beginning of the session, on one background thread, one run after another; their tests read the
result at the end of the session. The in-process tests mostly keep one core busy (one torch thread),
so those runs take the other core instead of adding their minutes to the suite's.

A test opts in with ``@pytest.mark.background.with_args(job)`` (a whole module with ``pytestmark``;
``with_args`` because a lone function argument would be marked, not passed): ``job`` takes an empty
folder and returns what the tests check, and the tests (or their fixture) read ``result(job)``.
The conftest submits the jobs of the selected tests once collection ends and moves those tests to the
end of the session.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

Job = Callable[[Path], Any]

_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raynas-tests-background")
_jobs: dict[str, Future] = {}
seconds: dict[str, float] = {}  # each finished run's own wall-clock time (its tests' durations show only the wait)
_root = Path(tempfile.mkdtemp(prefix="raynas-tests-background-"))


def _key(job: Job) -> str:
    return f"{job.__module__}.{job.__qualname__}"


def submit(job: Job) -> None:
    """Queue ``job`` (once) in a fresh folder of its own."""
    key = _key(job)
    if key not in _jobs:
        folder = _root / key
        folder.mkdir()
        _jobs[key] = _pool.submit(_timed, key, job, folder)


def _timed(key: str, job: Job, folder: Path) -> Any:
    start = time.perf_counter()
    try:
        return job(folder)
    finally:
        seconds[key] = time.perf_counter() - start


def result(job: Job) -> Any:
    """``job``'s return value, waiting for it (queued now if nothing queued it, as when run alone); its exception re-raised."""
    submit(job)
    return _jobs[_key(job)].result()


def finish() -> None:
    """Wait for queued runs (each bounded by its own timeouts) and remove their folders."""
    _pool.shutdown(wait=True, cancel_futures=True)
    shutil.rmtree(_root, ignore_errors=True)
