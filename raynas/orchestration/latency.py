"""The run's latency models: each target's table for the run's space and for every space its strategy
asks for, profiled on the target's node (op cache reused), estimated for unreachable hardware, or,
when resuming, the one saved in the run directory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import ray

from raynas.config import ConfigError, ExperimentConfig, TargetConfig
from raynas.execution.tasks import cache_update, on_target, profile_target
from raynas.hardware.cache import OpCache
from raynas.hardware.estimates import estimated_table
from raynas.hardware.lut import LatencyTable
from raynas.hardware.models import LatencyModel, LatencyModels
from raynas.hardware.tabular import LookupLatency, TabularBenchmark, TabularError
from raynas.space.macro import get_space
from raynas.tracking.sync import lut_path


@dataclass
class Profiler:
    """Builds a run's ``LatencyModels``; every table is saved in the run directory as it is made."""

    cfg: ExperimentConfig
    run_dir: Path
    num_classes: int
    log: Callable[[str], None] = print
    resume: bool = False

    def models(self, extra_spaces: list[str]) -> LatencyModels:
        """Every target's table for the run's space, then for each of ``extra_spaces`` in the same unit."""
        latency = LatencyModels(self.cfg.space)
        for target in self.cfg.targets:
            latency.add(target.name, self.table(target, None))
        for target in self.cfg.targets:
            for space in extra_spaces:
                latency.add(target.name, self.table(target, space, unit=latency.table(target.name).yardstick_ms), space=space)
        return latency

    def table(self, target: TargetConfig, space: str | None, *, unit: float | None = None) -> LatencyModel:
        """The target's table for ``space`` (None: the run's); ``unit``: the yardstick of its other tables."""
        if target.estimate is not None and target.estimate.lookup is not None:
            return self._lookup(target)
        path = lut_path(self.run_dir, target.name, space)
        if self.resume and path.is_file():
            self.log(f"[raynas] {target.name}: resuming with the latency table saved in the run directory")
            return LatencyTable.load(path)
        lut = self._estimate(target, space) if target.estimate is not None else self._profile(target.name, space, unit=unit)
        lut.save(path)
        return lut

    def _lookup(self, target: TargetConfig) -> LookupLatency:
        """The target's column of a tabular benchmark (read in place, so nothing is saved); a table
        without that device is refused here, before any search."""
        try:
            model = TabularBenchmark.load(target.estimate.lookup).latency(target.name)
        except TabularError as exc:
            raise ConfigError(f"config field targets ({target.name}).estimate.lookup: {exc}") from None
        self.log(f"[raynas] {target.name}: latency looked up in {Path(model.source).name}, an estimate, not measured")
        return model

    def _estimate(self, target: TargetConfig, space: str | None) -> LatencyTable:
        est = target.estimate
        lut = estimated_table(
            target.name, get_space(space or self.cfg.space), table=est.table, device=est.device, batch_size=est.batch_size
        )
        self.log(f"[raynas] {target.name}: {lut.metadata['provenance']} estimate, not measured")
        return lut

    def _profile(self, target: str, space: str | None, *, unit: float | None) -> LatencyTable:
        """Profile on the target's node; the op cache is read and written here, on the driver's disk."""
        profile = self.cfg.profile
        if profile.cache_dir:
            profile = dataclasses.replace(profile, cache_dir=str(Path(profile.cache_dir).resolve()))
        cache = OpCache(profile.cache_dir, target) if profile.cache_dir else None
        cached = cache.read() if cache else None
        cache_path = str(cache.path) if cache else ""
        task = on_target(profile_target, target).remote(
            target,
            space or self.cfg.space,
            self.num_classes,
            profile=profile,
            seed=self.cfg.seed,
            yardstick_ms=unit,
            cached=cached,
            cache_path=cache_path,
        )
        lut = ray.get(task)
        if cache:
            cache.save(cache_update(lut, cached))
        self.log(f"[raynas] {target}: {lut.metadata['cache']}")
        return lut
