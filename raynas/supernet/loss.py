"""Latency-aware losses of ProxylessNAS (Cai et al., 2019, sec. 3.3 and the released code)."""

from __future__ import annotations

import torch

LATENCY_LOSSES = ("ratio", "mul", "add", "none")


def latency_aware_loss(
    ce: torch.Tensor,
    expected_ms: torch.Tensor,
    budget_ms: float,
    *,
    form: str = "mul",
    beta: float = 0.6,
    lam: float = 0.1,
    gamma: float = 0.0,
    floor_ms: float | None = None,
) -> torch.Tensor:
    """Combine cross-entropy with the expected latency E[lat] against a budget.

    ``ratio``: CE * r ** beta above the budget and CE * r ** -gamma below it, r = E[lat] / B (MnasNet's
    form, two-sided): unit-free, pulls toward B from both sides (``gamma`` 0: downward only). With
    ``floor_ms`` the target is the band [floor, B]: below it r = E[lat] / floor, inside it CE alone.
    ``mul``: CE * (log E[lat] / log B) ** beta, with latencies in microseconds so that both logs are
    positive for sub-millisecond budgets (the ProxylessNAS code; its pull depends on the unit).
    ``add``: CE + lam * E[lat] / B.
    ``none``: CE alone (the ablation without a latency loss: only the budget window constrains the result).
    """
    if form == "none":
        return ce
    if budget_ms <= 0.001 or float(expected_ms.detach()) <= 0.001:
        raise ValueError(f"latencies must exceed 1 us (budget {budget_ms} ms, expected {float(expected_ms.detach())} ms)")
    if form == "ratio":
        above, below = expected_ms / budget_ms, expected_ms / (budget_ms if floor_ms is None else floor_ms)
        return ce * above.clamp_min(1) ** beta * below.clamp_max(1) ** -gamma
    if form == "mul":
        ratio = torch.log(expected_ms * 1000.0) / torch.log(torch.tensor(budget_ms * 1000.0))
        return ce * ratio.clamp_min(1e-6) ** beta
    if form == "add":
        return ce + lam * expected_ms / budget_ms
    raise ValueError(f"unknown latency loss {form!r}; valid: {', '.join(LATENCY_LOSSES)}")
