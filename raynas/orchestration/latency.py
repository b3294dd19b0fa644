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
        for target, model in zip(self.cfg.targets, self.tables(None)):
            latency.add(target.name, model)
        units = {t.name: getattr(latency.table(t.name), "yardstick_ms", None) for t in self.cfg.targets}
        for space in extra_spaces:
            for target, model in zip(self.cfg.targets, self.tables(space, units=units)):
                latency.add(target.name, model, space=space)
        return latency

    def tables(self, space: str | None, *, units: dict[str, float | None] | None = None) -> list[LatencyModel]:
        """Every target's table for ``space`` (None: the run's). The targets' profiling tasks all start
        before the first is awaited, so targets on different nodes (or cores) profile at the same time."""
        pending = [self._begin(target, space, unit=(units or {}).get(target.name)) for target in self.cfg.targets]
        return [finish() for finish in pending]

    def _begin(self, target: TargetConfig, space: str | None, *, unit: float | None) -> Callable[[], LatencyModel]:
        """Start making the target's table; the returned call finishes it (and saves it in the run directory)."""
        if target.estimate is not None and target.estimate.lookup is not None:
            model = self._lookup(target)
            return lambda: model
        path = lut_path(self.run_dir, target.name, space)
        if self.resume and path.is_file():
            self.log(f"[raynas] {target.name}: resuming with the latency table saved in the run directory")
            saved = LatencyTable.load(path)
            return lambda: saved
        if target.estimate is not None:
            estimated = self._estimate(target, space)
            finish: Callable[[], LatencyTable] = lambda: estimated  # noqa: E731
        else:
            finish = self._profile(target.name, space, unit=unit)

        def save() -> LatencyTable:
            lut = finish()
            lut.save(path)
            return lut

        return save

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

    def _profile(self, target: str, space: str | None, *, unit: float | None) -> Callable[[], LatencyTable]:
        """Start profiling on the target's node; the returned call awaits the table. The op cache is read
        and written here, on the driver's disk."""
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

        def finish() -> LatencyTable:
            lut = ray.get(task)
            if cache:
                cache.save(cache_update(lut, cached))
            self.log(f"[raynas] {target}: {lut.metadata['cache']}")
            return lut

        return finish
