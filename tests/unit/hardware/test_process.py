"""Targets name the process they run in: allocator settings a process starts with, through Ray and subprocesses."""

import json
import subprocess
import sys

import pytest

from raynas.hardware.backend import HardwareUnavailable
from raynas.hardware.process import ALLOCATORS, Allocator, _same, check_started_with, started_env, started_with
from raynas.hardware.targets import get_target

# Run inside a process: its start environment, and whether glibc served a 4 MiB block from mmap
# (glibc's default threshold is 128 KiB; the tuned one keeps blocks up to 32 MiB in the heap).
PROBE = """
import ctypes, json
from raynas.hardware.process import started_env
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t)
                for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.mallinfo2.restype = ctypes.c_void_p, Info
before = libc.mallinfo2().hblks
block = libc.malloc(4 << 20)
mmapped = libc.mallinfo2().hblks > before
libc.free(ctypes.c_void_p(block))
print(json.dumps({"env": started_env(), "mmapped": mmapped}))
"""


def started_with_in(seen: dict, wanted: dict) -> bool:
    return all(_same(seen[k], v) for k, v in wanted.items())


def test_the_default_target_is_a_plain_process_and_the_tuned_one_states_its_tunables():
    assert get_target("cpu-1t-b16").process_env() == {"GLIBC_TUNABLES": "", "LD_PRELOAD": ""}
    tuned = get_target("cpu-1t-b16-tuned")
    assert "glibc.malloc.mmap_threshold=33554432" in tuned.process_env()["GLIBC_TUNABLES"]
    assert tuned.recipe()["start"].startswith("GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432")
    assert get_target("cpu-1t-b16").recipe()["start"] == "python <your server>"


def test_a_preloaded_allocator_that_is_not_installed_is_refused_by_name():
    with pytest.raises(HardwareUnavailable, match="needs libraynas-no-such-malloc"):
        Allocator("x", "missing", preload="raynas-no-such-malloc").env()


@pytest.mark.parametrize("name", ["glibc-default", "glibc-tuned"])
def test_a_process_started_with_an_allocators_env_runs_with_it(name):
    env = ALLOCATORS.get(name).env()
    out = subprocess.run([sys.executable, "-c", PROBE], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert started_with_in(seen["env"], env) and seen["mmapped"] == (name == "glibc-default")


def test_timing_in_a_process_started_otherwise_is_refused():
    if started_env()["GLIBC_TUNABLES"]:
        pytest.skip("this test process itself started with GLIBC_TUNABLES")
    check_started_with(ALLOCATORS.get("glibc-default"))
    with pytest.raises(HardwareUnavailable, match="not allocator 'glibc-tuned'"):
        check_started_with(ALLOCATORS.get("glibc-tuned"))


def test_ray_tasks_of_a_target_start_with_its_allocator(ray_session):
    @ray_session.remote
    def inside(env: dict) -> bool:
        return started_with(env)

    for name in ("cpu-1t-b16", "cpu-1t-b16-tuned"):
        target = get_target(name)
        assert ray_session.get(inside.options(**target.task_resources()).remote(target.process_env()))
    assert not ray_session.get(
        inside.options(**get_target("cpu-1t-b16").task_resources()).remote(get_target("cpu-1t-b16-tuned").process_env())
    )
