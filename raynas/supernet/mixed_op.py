"""A searchable layer: every candidate op, architecture logits alpha, and how paths are activated.

Path binarization (Cai et al., ProxylessNAS, 2019): per step only sampled paths run.
* ``sample_single``: one path: weight steps, warm-up (uniformly) and REINFORCE architecture steps.
* ``sample_pair``: the ``two`` mode for architecture steps: two paths drawn from softmax(alpha)
  without replacement; one is active (gate 1), the other runs without a graph (gate 0). The gate
  gradient dL/dg_j = <dL/dout, o_j> is mapped to alpha through the softmax restricted to the pair
  (paper eq. 4), and ``rescale_pair`` keeps the unsampled paths' probabilities fixed.
* ``activate_all``: the ``full`` baseline: every path runs with its graph and the outputs are mixed
  by softmax(alpha) (the DARTS relaxation), so memory grows with the number of candidates.
"""

from __future__ import annotations

import torch
from torch import nn

from raynas.space.macro import LayerSpec
from raynas.space.ops import build_op


class PathChoice(nn.Module):
    """One decision among ``choices``: its logits alpha and which path(s) run now. It owns no
    candidate modules: ``mix`` runs the caller's, so one decision can steer several copies of an
    op (a cell repeated through a network) whose gate gradients then add up."""

    def __init__(self, choices: tuple[str, ...]) -> None:
        super().__init__()
        self.choices = choices
        self.alpha = nn.Parameter(torch.zeros(len(self.choices)))
        self.active = 0
        self.pair: tuple[int, int] | None = None
        self.gates: torch.Tensor | None = None
        self.full = False
        self._alpha_before: torch.Tensor | None = None

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.alpha, dim=0)

    def sample_single(self, generator: torch.Generator, uniform: bool = False, alpha: torch.Tensor | None = None) -> int:
        """Pick one path: uniformly (warm-up) or from softmax(alpha); returns its index.

        Sampling reads a CPU copy of alpha (``alpha``, when the caller fetched every layer's at
        once) with the CPU ``generator``: valid wherever the weights live, and the same paths for
        a seed on every device.
        """
        weights = torch.ones(len(self.choices)) if uniform else torch.softmax(self._cpu(alpha), 0)
        self.set_single(int(torch.multinomial(weights, 1, generator=generator)))
        return self.active

    def _cpu(self, alpha: torch.Tensor | None) -> torch.Tensor:
        return self.alpha.detach().cpu() if alpha is None else alpha

    def set_single(self, index: int) -> None:
        self.active, self.pair, self.gates, self.full = index, None, None, False

    def activate_all(self) -> None:
        self.pair, self.gates, self.full = None, None, True

    def sample_pair(self, generator: torch.Generator, alpha: torch.Tensor | None = None) -> None:
        """Two-path binarization for an architecture step (sampled on the CPU, like ``sample_single``)."""
        alpha = self._cpu(alpha)
        pair = torch.multinomial(torch.softmax(alpha, 0), 2, replacement=False, generator=generator).tolist()
        within = torch.softmax(alpha[pair], dim=0)
        first_active = int(torch.multinomial(within, 1, generator=generator)) == 0
        self.set_pair(*(pair if first_active else pair[::-1]))

    def set_pair(self, active: int, other: int) -> None:
        """Two-path state with ``active`` gated on and ``other`` run without a graph."""
        self.pair = (active, other)
        self.active, self.full = active, False
        self.gates = torch.zeros_like(self.alpha.detach())
        self.gates[self.active] = 1.0
        self.gates.requires_grad_(True)
        self._alpha_before = self.alpha.detach()[list(self.pair)].clone()

    def mix(self, candidates: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        """The output of ``candidates`` (one module per choice) under the current mode."""
        if self.full:
            p = self.probs()
            return sum(p[i] * op(x) for i, op in enumerate(candidates))
        if self.pair is None:
            return candidates[self.active](x)
        active, other = self.pair
        out = self.gates[active] * candidates[active](x)
        with torch.no_grad():
            other_out = candidates[other](x)
        return out + self.gates[other] * other_out

    def accumulate_alpha_grad(self) -> None:
        """dL/dalpha_i += sum_j dL/dg_j * p_j * (delta_ij - p_i), over the sampled pair (paper eq. 4)."""
        if self.pair is None or self.gates is None or self.gates.grad is None:
            return
        idx = list(self.pair)
        p = torch.softmax(self.alpha.detach()[idx], dim=0)
        g = self.gates.grad[idx]
        jacobian = torch.diag(p) - torch.outer(p, p)
        grad = torch.zeros_like(self.alpha)
        grad[idx] = jacobian @ g
        self.alpha.grad = grad if self.alpha.grad is None else self.alpha.grad + grad

    @torch.no_grad()
    def rescale_pair(self) -> None:
        """After the alpha step, shift the pair so its total probability mass is unchanged."""
        if self.pair is None or self._alpha_before is None:
            return
        idx = list(self.pair)
        new = self.alpha[idx]
        offset = torch.logsumexp(new, 0) - torch.logsumexp(self._alpha_before, 0)
        self.alpha[idx] = new - offset


class MixedLayer(PathChoice):
    """All candidate ops of one layer of a chain; runs only the path(s) the current mode asks for."""

    def __init__(self, spec: LayerSpec, choices: tuple[str, ...] | None = None) -> None:
        super().__init__(choices or spec.choices)
        self.spec = spec
        self.candidates = nn.ModuleList(build_op(op, spec.in_channels, spec.out_channels, stride=spec.stride) for op in self.choices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mix(self.candidates, x)
        return out + x if self.spec.residual else out

    @torch.no_grad()
    def export(self, op: str, target: nn.Module) -> None:
        """Copy candidate ``op``'s weights into a standalone module of that op."""
        target.load_state_dict(self.candidates[self.choices.index(op)].state_dict())
