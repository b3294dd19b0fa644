"""REINFORCE for architecture logits: for objectives without gradients (measured latency, say).

grad_alpha E[R] = E[(R - b) * grad_alpha log p(path)], with grad log softmax = onehot - p per layer
and a moving-average baseline b that leaves the estimate unbiased while cutting its variance.
"""

from __future__ import annotations

import torch


class RewardBaseline:
    """Exponential moving average of past rewards."""

    def __init__(self, decay: float = 0.9) -> None:
        self.decay, self.value = decay, None

    def update(self, reward: float) -> float:
        """Returns the baseline to use for ``reward`` (the average before it), then folds it in."""
        if self.value is None:
            self.value = reward
            return reward
        baseline = self.value
        self.value = self.decay * baseline + (1 - self.decay) * reward
        return baseline


def reinforce_grads(probs: list[torch.Tensor], sampled: list[int], advantage: float) -> list[torch.Tensor]:
    """Per-layer gradient of the *loss* -(R - b) * log p(path) with respect to alpha."""
    grads = []
    for p, index in zip(probs, sampled):
        onehot = torch.zeros_like(p)
        onehot[index] = 1.0
        grads.append(-advantage * (onehot - p.detach()))
    return grads
