"""What a run searches for and compares against: scenarios from the targets' budgets, and the
hand-designed references."""

from __future__ import annotations

from raynas.api import HAND, Finalist, Scenario
from raynas.config import ConfigError, ExperimentConfig
from raynas.hardware.lut import LatencyTable
from raynas.space.catalog import hand_designed as catalog_hand_designed
from raynas.space.cells import is_cell_space
from raynas.space.macro import get_space


def resolve_scenarios(
    cfg: ExperimentConfig, luts: dict[str, LatencyTable], ranges: dict[str, tuple[float, float]] | None = None
) -> list[Scenario]:
    """One scenario per (target, budget, seed); fractional budgets resolve inside each target's latency
    range (``ranges``: the strategy's own, e.g. OFA's subnets; default the space's)."""
    macro, scenarios = None if is_cell_space(cfg.space) else get_space(cfg.space), []
    for tgt in cfg.targets:
        low, high = ranges[tgt.name] if ranges else luts[tgt.name].latency_range(macro)
        for b in tgt.budgets(low, high):
            if b < low:
                raise ConfigError(
                    f"config field targets ({tgt.name}): budget {b:.3f} ms is below the fastest network the search "
                    f"can return ({low:.3f} ms on this target); raise it"
                )
            scenarios += [Scenario(tgt.name, round(b, 4), seed) for seed in range(cfg.seed, cfg.seed + cfg.evaluation.seeds)]
    return scenarios


def hand_designed(cfg: ExperimentConfig, seeds: list[int]) -> list[Finalist]:
    """The space's references (MobileNetV2-style chains at each width multiplier; a cell space's own)
    at each seed; measured on every target."""
    refs = catalog_hand_designed(cfg.space, cfg.evaluation.hand_designed_widths)
    return [Finalist(f"{HAND}:{name}#s{seed}", HAND, arch, seed=seed) for name, arch in refs.items() for seed in seeds]
