"""The process a target's networks run in: the memory allocator a deployment starts with.

Latency depends on the process as much as on the network: at batch 16 on one thread, glibc's
default allocator returns big activation buffers to the OS on every free, and the same network ran
2.4x slower than in a process whose mmap / trim thresholds keep them. So a target names its
allocator, profiling and final measurement run in a process started that way (a Ray task's runtime
env; a re-executed benchmark), and the settings ship with the found network as its recipe.

Settings are environment variables read when the process starts (``GLIBC_TUNABLES``,
``LD_PRELOAD``); setting them inside a running process does nothing. An empty value is the default,
so every allocator states both.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from raynas._registry import Registry
from raynas.hardware.backend import HardwareUnavailable

KEEP_BYTES = 32 * 1024 * 1024  # glibc's ceiling for the mmap threshold on 64-bit
VARIABLES = ("GLIBC_TUNABLES", "LD_PRELOAD")


@dataclass(frozen=True)
class Allocator:
    """How a process allocates memory, as environment variables it must start with."""

    name: str
    description: str
    tunables: str = ""  # GLIBC_TUNABLES
    preload: str = ""  # a library name for LD_PRELOAD (found with ctypes.util.find_library)

    def env(self) -> dict[str, str]:
        """The variables to start a process with; refuses, naming the package, when the library is missing."""
        path = ""
        if self.preload:
            path = _library_path(self.preload)
            if not path:
                raise HardwareUnavailable(
                    f"allocator {self.name!r} needs lib{self.preload} on the node: install it (Debian: apt install lib{self.preload}-dev)"
                )
        return {"GLIBC_TUNABLES": self.tunables, "LD_PRELOAD": path}


def _library_path(name: str) -> str:
    found = ctypes.util.find_library(name)
    if not found:
        return ""
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        if (Path(folder) / found).is_file():
            return str(Path(folder) / found)
    return found


ALLOCATORS: Registry[Allocator] = Registry("allocator")
ALLOCATORS.add_named(Allocator("glibc-default", "glibc's malloc as a plain `python` process gets it"))
ALLOCATORS.add_named(
    Allocator(
        "glibc-tuned",
        "glibc's malloc keeping freed buffers (mmap threshold 32 MiB, trim threshold 64 MiB), as a tuned inference server",
        tunables=f"glibc.malloc.mmap_threshold={KEEP_BYTES}:glibc.malloc.trim_threshold={2 * KEEP_BYTES}",
    )
)
ALLOCATORS.add_named(Allocator("jemalloc", "jemalloc preloaded (LD_PRELOAD)", preload="jemalloc"))
ALLOCATORS.add_named(Allocator("tcmalloc", "tcmalloc preloaded (LD_PRELOAD)", preload="tcmalloc_minimal"))


def started_env(variables: tuple[str, ...] = VARIABLES) -> dict[str, str]:
    """The values this process was started with (``/proc/self/environ``; ``os.environ`` elsewhere)."""
    try:
        pairs = (item.split(b"=", 1) for item in Path("/proc/self/environ").read_bytes().split(b"\0") if b"=" in item)
        start = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}
    except OSError:
        start = dict(os.environ)
    return {name: start.get(name, "") for name in variables}


def started_with(env: dict[str, str]) -> bool:
    """True when this process started with these settings (empty = unset)."""
    seen = started_env(tuple(env))
    return all(_same(seen[name], value) for name, value in env.items())


def _same(seen: str, wanted: str) -> bool:
    """Equal, or (glibc before 2.39 cuts GLIBC_TUNABLES in the environment after the first tunable
    it applied, though it applies them all) ``seen`` is ``wanted``'s first colon-separated part."""
    return seen == wanted or (bool(seen) and wanted.startswith(seen + ":"))


def check_started_with(allocator: Allocator) -> None:
    """Refuse to time in a process that did not start with the target's allocator: its numbers would
    describe another deployment."""
    want = allocator.env()
    if not started_with(want):
        raise HardwareUnavailable(
            f"this process started with {started_env()}, not allocator {allocator.name!r} ({want}): start it with those variables"
        )


def reexec_with(env: dict[str, str]) -> None:
    """Restart this very command with ``env`` unless it already started that way (benchmarks)."""
    if not started_with(env):
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], os.environ | env)
