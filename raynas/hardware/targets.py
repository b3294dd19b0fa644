"""Hardware targets: where a network runs and how its latency is measured."""

from __future__ import annotations

import os
from dataclasses import dataclass

from raynas._registry import Registry


@dataclass(frozen=True)
class HardwareTarget:
    """One deployment setting. Its nodes carry the Ray resource ``raynas_target:<name>``."""

    name: str
    backend: str  # "torch-cpu" (torch eager on CPU)
    threads: int  # intra-op threads; 0 = all cores of the node
    batch_size: int  # images per inference call
    description: str

    @property
    def resource(self) -> str:
        return f"raynas_target:{self.name}"

    def num_threads(self) -> int:
        return self.threads or os.cpu_count() or 1


TARGETS: Registry[HardwareTarget] = Registry("hardware target")
register_target = TARGETS.add_named
get_target = TARGETS.get


register_target(HardwareTarget("cpu-1t", "torch-cpu", 1, 1, "torch eager, 1 CPU thread, batch 1 (single-image latency)"))
register_target(HardwareTarget("cpu-1t-b16", "torch-cpu", 1, 16, "torch eager, 1 CPU thread, batch 16 (compute-bound core)"))
register_target(HardwareTarget("cpu-all", "torch-cpu", 0, 1, "torch eager, all CPU threads of the node, batch 1"))
