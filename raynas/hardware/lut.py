"""Per-target latency lookup tables: profiled once per op and input shape, stored as Parquet."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from raynas.space.architecture import Architecture
from raynas.space.macro import MacroConfig, get_space
from raynas.space.ops import SKIP

_META_KEY = b"raynas.lut"
_FIXED = "__fixed__"
_CORRECTION = "__correction__"


class LatencyTableError(ValueError):
    """A table that cannot serve the requested space (wrong space, missing ops, unreadable)."""


def expected_latency(probs: Sequence[torch.Tensor], costs: Sequence[Sequence[float]], fixed_ms: float) -> torch.Tensor:
    """fixed + sum over layers of sum_i p_i * cost_i, differentiable in the probabilities."""
    total = torch.tensor(fixed_ms, dtype=probs[0].dtype, device=probs[0].device) if probs else torch.tensor(fixed_ms)
    for p, row in zip(probs, costs):
        total = total + (p * torch.tensor(row, dtype=p.dtype, device=p.device)).sum()
    return total


@dataclass
class LatencyTable:
    """Latency in ms of every (layer shape, op), plus the fixed part of every network."""

    target: str
    space: str
    space_hash: str
    batch_size: int
    entries: dict[tuple[str, str], float]  # (LayerSpec.key, op) -> ms; the zero op costs 0
    fixed: dict[str, float]  # stem, head, and measured per-network overhead, in ms
    metadata: dict[str, str] = field(default_factory=dict)
    scale: float = 1.0  # learned correction: whole networks cost fixed + scale * (sum of isolated ops)

    @property
    def yardstick_ms(self) -> float | None:
        """The yardstick latency the table was timed in (raynas/hardware/timing.py); None when estimated."""
        value = self.metadata.get("yardstick_ms")
        return float(value) if value else None

    @property
    def fixed_ms(self) -> float:
        return sum(self.fixed.values())

    def layer_costs(self, macro: MacroConfig, choices: Sequence[Sequence[str]] | None = None) -> list[list[float]]:
        """Latency per layer per choice, in the order of ``choices`` (default ``LayerSpec.choices``)."""
        self.check_space(macro)
        specs = macro.layers()
        choices = choices or [spec.choices for spec in specs]
        return [[0.0 if op == SKIP else self.scale * self.entries[(spec.key, op)] for op in ops] for spec, ops in zip(specs, choices)]

    def check_space(self, macro: MacroConfig) -> None:
        if macro.space_hash() != self.space_hash:
            raise LatencyTableError(
                f"latency table of target {self.target!r} was built for space {self.space!r} "
                f"(hash {self.space_hash}), not {macro.name!r} (hash {macro.space_hash()}); rebuild it for this space"
            )
        missing = sorted(
            {f"{spec.key}/{op}" for spec in macro.layers() for op in spec.choices if op != SKIP and (spec.key, op) not in self.entries}
        )
        if missing:
            raise LatencyTableError(f"latency table of target {self.target!r} lacks {len(missing)} ops: {', '.join(missing)}")

    def predict(self, arch: Architecture, macro: MacroConfig | None = None) -> float:
        """Fixed cost plus each layer's op (``macro``: the architecture's space, looked up when not given)."""
        macro = macro or get_space(arch.space)
        costs = self.layer_costs(macro)
        return self.fixed_ms + sum(row[spec.choices.index(op)] for row, spec, op in zip(costs, macro.layers(), arch.ops))

    def expected(self, probs: list[torch.Tensor], macro: MacroConfig, choices: Sequence[Sequence[str]] | None = None) -> torch.Tensor:
        """E[latency] = fixed + sum_layers sum_i p_i * lat_i; differentiable in the probabilities."""
        return expected_latency(probs, self.layer_costs(macro, choices), self.fixed_ms)

    def range_ends(self, macro: MacroConfig) -> list[Architecture]:
        """The fastest and the slowest architecture of the space by summed ops (the first cheapest/dearest op of each layer)."""
        specs, costs = macro.layers(), self.layer_costs(macro)
        return [Architecture(macro.name, tuple(s.choices[row.index(pick(row))] for s, row in zip(specs, costs))) for pick in (min, max)]

    def latency_range(self, macro: MacroConfig) -> tuple[float, float]:
        """Latency of the fastest and of the slowest architecture of the space."""
        costs = self.layer_costs(macro)
        return self.fixed_ms + sum(map(min, costs)), self.fixed_ms + sum(map(max, costs))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [(k, op, ms) for (k, op), ms in sorted(self.entries.items())] + [(_FIXED, n, ms) for n, ms in sorted(self.fixed.items())]
        rows.append((_CORRECTION, "scale", self.scale))
        table = pa.table({"layer": [r[0] for r in rows], "op": [r[1] for r in rows], "latency_ms": [r[2] for r in rows]})
        meta = {"target": self.target, "space": self.space, "space_hash": self.space_hash, "batch_size": self.batch_size, **self.metadata}
        table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise LatencyTableError(f"cannot read latency table {path}: {exc}; rebuild it or point to a valid Parquet file") from None
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None or set(table.column_names) != {"layer", "op", "latency_ms"}:
            raise LatencyTableError(f"{path} is not a raynas latency table (no {_META_KEY.decode()} metadata or wrong columns)")
        meta = json.loads(raw)
        entries, fixed, scale = {}, {}, 1.0
        for layer, op, ms in zip(*(table.column(c).to_pylist() for c in ("layer", "op", "latency_ms"))):
            if layer == _FIXED:
                fixed[op] = ms
            elif layer == _CORRECTION:
                scale = ms
            else:
                entries[(layer, op)] = ms
        core = {k: meta.pop(k) for k in ("target", "space", "space_hash", "batch_size")}
        return cls(entries=entries, fixed=fixed, metadata={k: str(v) for k, v in meta.items()}, scale=scale, **core)
