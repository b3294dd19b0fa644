"""Variant plans: a base config, switches shared by every variant, and named variants of one or more
switches each (the ablations and the search-settings tuning both run one). Every variant is
validated when the plan is read, before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raynas.config import ConfigError, ExperimentConfig, load_config, read_yaml_mapping


@dataclass(frozen=True)
class VariantPlan:
    kind: str  # "ablation", "tuning": names runs and errors
    base: str
    overrides: dict[str, Any]
    variants: dict[str, dict[str, Any]]

    def config(self, variant: str, extra: dict[str, Any]) -> ExperimentConfig:
        """The base config with the plan's and the variant's switches; a bad switch names its variant."""
        try:
            return load_config(self.base, {"name": f"{self.kind}-{variant}"} | self.overrides | self.variants[variant] | extra)
        except ConfigError as exc:
            raise ConfigError(f"{self.kind} variant {variant!r}: {exc}") from None

    def configs(self, chosen: list[str], extra: dict[str, Any], flag: str = "--variant") -> dict[str, ExperimentConfig]:
        """The chosen variants' configs (all when none is chosen); an unknown name is refused with the valid ones."""
        unknown = sorted(set(chosen) - set(self.variants))
        if unknown:
            raise ConfigError(f"{flag} {unknown[0]!r} is not in the {self.kind} plan; valid: {', '.join(self.variants)}")
        return {v: self.config(v, extra) for v in chosen or self.variants}


def load_plan(path: str, kind: str) -> VariantPlan:
    """Read and check a plan: a base config, shared switches, named variants (all validated up front)."""
    raw = read_yaml_mapping(path, f"{kind} plan", "pass one of experiments/configs/plans/*.yaml or a copy of it")
    if set(raw) - {"base", "set", "variants"} or not isinstance(raw.get("base"), str):
        raise ConfigError(
            f"{kind} plan {path}: needs keys base (a config path), set (switches for every variant) and variants (name -> switches)"
        )
    variants = raw.get("variants")
    if not isinstance(variants, dict) or not variants or not all(isinstance(v, dict) for v in variants.values()):
        raise ConfigError(f"{kind} plan {path}: variants must map each name to its switches (an empty mapping is the base itself)")
    plan = VariantPlan(kind, raw["base"], dict(raw.get("set") or {}), {str(k): dict(v) for k, v in variants.items()})
    for name in plan.variants:
        plan.config(name, {})
    return plan
