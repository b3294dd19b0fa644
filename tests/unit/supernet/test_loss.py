import pytest
import torch

from raynas.supernet.loss import latency_aware_loss


def test_mul_form_is_ce_at_the_budget_and_penalizes_overshoot():
    ce = torch.tensor(2.0)
    assert latency_aware_loss(ce, torch.tensor(1.5), 1.5) == pytest.approx(2.0)
    assert latency_aware_loss(ce, torch.tensor(3.0), 1.5) > 2.0
    assert latency_aware_loss(ce, torch.tensor(1.0), 1.5) < 2.0


def test_mul_form_matches_the_paper_formula_in_microseconds():
    ce, e, b, beta = torch.tensor(1.3), torch.tensor(2.4), 1.7, 0.6
    expected = 1.3 * (torch.log(torch.tensor(2400.0)) / torch.log(torch.tensor(1700.0))) ** beta
    torch.testing.assert_close(latency_aware_loss(ce, e, b, form="mul", beta=beta), expected)


def test_add_form_and_gradient_direction():
    e = torch.tensor(3.0, requires_grad=True)
    loss = latency_aware_loss(torch.tensor(1.0), e, 1.5, form="add", lam=0.5)
    assert loss.item() == pytest.approx(1.0 + 0.5 * 2.0)
    loss.backward()
    assert e.grad > 0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unknown latency loss"):
        latency_aware_loss(torch.tensor(1.0), torch.tensor(1.0), 1.0, form="pow")
    with pytest.raises(ValueError, match="exceed 1 us"):
        latency_aware_loss(torch.tensor(1.0), torch.tensor(1.0), 0.0)


@pytest.mark.parametrize("scale", [1.0, 1000.0])  # ms or us: the ratio form pulls the same
def test_ratio_form_is_unit_free_and_pulls_toward_the_budget_from_both_sides(scale):
    def loss_and_grad(e_ms):
        e = torch.tensor(e_ms * scale, requires_grad=True)
        loss = latency_aware_loss(torch.tensor(2.0), e, 1.5 * scale, form="ratio", beta=0.6, gamma=0.1)
        loss.backward()
        return loss.item(), e.grad.item() * scale

    at, _ = loss_and_grad(1.5)
    over, pull_over = loss_and_grad(1.5 * 1.41)
    under, pull_under = loss_and_grad(1.5 * 0.5)
    assert (
        at == pytest.approx(2.0) and over == pytest.approx(2.0 * 1.41**0.6, rel=1e-5) and under == pytest.approx(2.0 * 0.5**-0.1, rel=1e-5)
    )
    assert pull_over > 0 > pull_under  # gradient descent moves E[lat] down above B and up below it


def test_the_mul_form_depends_on_the_unit_and_the_ratio_form_does_not():
    ce = torch.tensor(1.0)
    mul = [latency_aware_loss(ce, torch.tensor(2.18 * s), 1.11 * s, form="mul").item() for s in (1.0, 10.0)]
    ratio = [latency_aware_loss(ce, torch.tensor(2.18 * s), 1.11 * s, form="ratio").item() for s in (1.0, 10.0)]
    assert mul[0] != pytest.approx(mul[1], rel=1e-3) and ratio[0] == pytest.approx(ratio[1])


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_a_band_leaves_ce_alone_inside_and_pulls_in_from_both_sides_whatever_the_unit(scale):
    def loss_and_grad(e_ms):
        e = torch.tensor(e_ms * scale, requires_grad=True)
        loss = latency_aware_loss(torch.tensor(2.0), e, 1.0 * scale, form="ratio", beta=3.0, gamma=3.0, floor_ms=0.9 * scale)
        loss.backward()
        return loss.item(), e.grad.item() * scale

    assert loss_and_grad(0.95) == (pytest.approx(2.0), 0.0)  # inside [0.9 B, B]: CE alone, no pull
    over, pull_over = loss_and_grad(1.1)
    under, pull_under = loss_and_grad(0.8)
    assert over == pytest.approx(2.0 * 1.1**3, rel=1e-5) and under == pytest.approx(2.0 * (0.8 / 0.9) ** -3, rel=1e-5)
    assert pull_over > 0 > pull_under
