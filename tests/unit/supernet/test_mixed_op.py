import pytest
import torch

from raynas.space.macro import LayerSpec
from raynas.supernet.mixed_op import MixedLayer

SPEC = LayerSpec(index=0, in_channels=4, out_channels=4, stride=1, input_size=6)


def _count_calls(layer: MixedLayer) -> list[int]:
    calls = [0] * len(layer.candidates)
    for i, op in enumerate(layer.candidates):
        op.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    return calls


def test_single_path_mode_runs_only_the_sampled_op():
    layer = MixedLayer(SPEC)
    calls = _count_calls(layer)
    layer.sample_single(torch.Generator().manual_seed(0))
    layer(torch.randn(2, 4, 6, 6))
    assert calls[layer.active] == 1 and sum(calls) == 1


def test_two_path_mode_runs_exactly_the_two_sampled_ops_with_one_graph():
    layer = MixedLayer(SPEC)
    calls = _count_calls(layer)
    layer.sample_pair(torch.Generator().manual_seed(1))
    out = layer(torch.randn(2, 4, 6, 6))
    assert sorted(i for i, c in enumerate(calls) if c) == sorted(layer.pair) and sum(calls) == 2
    assert layer.gates[layer.pair[0]] == 1 and layer.gates.sum() == 1
    out.sum().backward()
    active, other = layer.pair
    assert any(p.grad is not None for p in layer.candidates[active].parameters()) or layer.choices[active] == "skip"
    assert all(p.grad is None for p in layer.candidates[other].parameters())


def test_alpha_gradient_is_the_softmax_jacobian_of_the_gate_gradients():
    layer = MixedLayer(SPEC)
    with torch.no_grad():
        layer.alpha.copy_(torch.randn(len(layer.choices)))
    layer.sample_pair(torch.Generator().manual_seed(2))
    x, target = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    ((layer(x) - target) ** 2).sum().backward()
    layer.accumulate_alpha_grad()
    a, b = layer.pair
    with torch.no_grad():
        outs = {j: layer.candidates[j](x) for j in (a, b)}
        base = outs[a] + (x if SPEC.residual else 0)
        dout = 2 * (base - target)
        g = torch.stack([(dout * outs[j]).sum() for j in (a, b)])
        p = torch.softmax(layer.alpha[[a, b]], 0)
        expected = (torch.diag(p) - torch.outer(p, p)) @ g
    torch.testing.assert_close(layer.alpha.grad[[a, b]], expected, rtol=1e-4, atol=1e-4)
    untouched = [i for i in range(len(layer.choices)) if i not in (a, b)]
    assert torch.all(layer.alpha.grad[untouched] == 0)
    assert layer.alpha.grad[[a, b]].abs().sum() > 0


def test_rescale_keeps_unsampled_probabilities():
    layer = MixedLayer(SPEC)
    with torch.no_grad():
        layer.alpha.copy_(torch.randn(len(layer.choices)))
    layer.sample_pair(torch.Generator().manual_seed(3))
    before = layer.probs().detach().clone()
    with torch.no_grad():
        layer.alpha[layer.pair[0]] += 0.7
        layer.alpha[layer.pair[1]] -= 0.2
    layer.rescale_pair()
    after = layer.probs().detach()
    untouched = [i for i in range(len(layer.choices)) if i not in layer.pair]
    torch.testing.assert_close(after[untouched], before[untouched])
    assert after[layer.pair[0]] > before[layer.pair[0]]


def _loss_with_gates(layer: MixedLayer, x, target, gates):
    """The two-path output as a function of continuous gates, for finite differences."""
    a, b = layer.pair
    with torch.no_grad():
        out = gates[0] * layer.candidates[a](x) + gates[1] * layer.candidates[b](x)
        out = out + x if SPEC.residual else out
        return float(((out - target) ** 2).sum())


def test_two_path_gate_gradient_matches_finite_differences():
    layer = MixedLayer(SPEC).double()
    layer.sample_pair(torch.Generator().manual_seed(4))
    layer.gates = layer.gates.detach().double().requires_grad_(True)
    x, target = torch.randn(2, 4, 6, 6, dtype=torch.float64), torch.randn(2, 4, 6, 6, dtype=torch.float64)
    layer.eval()
    ((layer(x) - target) ** 2).sum().backward()
    a, b = layer.pair
    eps = 1e-6
    for j, idx in enumerate((a, b)):
        plus, minus = [1.0, 0.0], [1.0, 0.0]
        plus[j] += eps
        minus[j] -= eps
        numeric = (_loss_with_gates(layer, x, target, plus) - _loss_with_gates(layer, x, target, minus)) / (2 * eps)
        assert float(layer.gates.grad[idx]) == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_full_mode_runs_every_path_and_its_alpha_gradient_matches_finite_differences():
    layer = MixedLayer(SPEC).double().eval()
    calls = _count_calls(layer)
    layer.activate_all()
    x, target = torch.randn(2, 4, 6, 6, dtype=torch.float64), torch.randn(2, 4, 6, 6, dtype=torch.float64)
    ((layer(x) - target) ** 2).sum().backward()
    assert all(c == 1 for c in calls)
    eps = 1e-6
    for i in range(len(layer.choices)):
        with torch.no_grad():
            layer.alpha[i] += eps
            up = float(((layer(x) - target) ** 2).sum())
            layer.alpha[i] -= 2 * eps
            down = float(((layer(x) - target) ** 2).sum())
            layer.alpha[i] += eps
        assert float(layer.alpha.grad[i]) == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-6)
