"""An architecture as plain, hashable data that travels through Ray, MLflow and Parquet."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from raynas.space.cells import check_cell_ops, is_cell_space
from raynas.space.macro import MacroConfig, get_space


@dataclass(frozen=True)
class Architecture:
    """One op name per decision of the named search space: per searchable layer of an MBConv chain,
    per edge of a cell (``raynas/space/cells.py``)."""

    space: str
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        if is_cell_space(self.space):
            check_cell_ops(self.space, self.ops)
        else:
            self.validate(get_space(self.space))

    def validate(self, macro: MacroConfig) -> None:
        layers = macro.layers()
        if len(self.ops) != len(layers):
            raise ValueError(f"space {macro.name!r} has {len(layers)} layers, architecture has {len(self.ops)}")
        for spec, op in zip(layers, self.ops):
            if op not in spec.choices:
                raise ValueError(f"layer {spec.index}: op {op!r} not allowed; choices: {', '.join(spec.choices)}")

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "ops": list(self.ops)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        return cls(space=data["space"], ops=tuple(data["ops"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        return cls.from_dict(json.loads(text))

    def to_string(self) -> str:
        """Compact readable form, e.g. ``k5e6|k3e3|skip``."""
        return "|".join(self.ops)

    @classmethod
    def from_string(cls, space: str, text: str) -> Architecture:
        return cls(space=space, ops=tuple(text.split("|")))

    @property
    def arch_id(self) -> str:
        """Stable across processes and Python versions (unlike ``hash``)."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:12]

    def __str__(self) -> str:
        return self.to_string()
