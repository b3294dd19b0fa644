"""Hand-designed reference networks inside a space's skeleton, the baselines NAS must beat."""

from __future__ import annotations

from raynas.space.architecture import Architecture
from raynas.space.macro import get_space, scaled_name

MOBILENET_V2_OP = "k3e6"  # MobileNetV2: every inverted residual is kernel 3, expansion 6, none skipped


def mobilenet_v2_like(space: str, width_mult: float = 1.0) -> Architecture:
    """MobileNetV2's fixed recipe on the space's stage layout, at a width multiplier.

    At 1.0 it is a member of the space (so the latency table predicts it); other multipliers
    live in the scaled space ``<space>@w<mult>`` and are measured only.
    """
    name = scaled_name(space, width_mult)
    return Architecture(name, (MOBILENET_V2_OP,) * len(get_space(name).layers()))


def width_multiplier(name: str) -> float:
    """The ``@w`` multiplier in a space name (1.0 when there is none)."""
    widths = [float(v[1:]) for v in name.split("@")[1:] if v.startswith("w")]
    return widths[-1] if widths else 1.0
