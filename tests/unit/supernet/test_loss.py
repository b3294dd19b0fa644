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
    torch.testing.assert_close(latency_aware_loss(ce, e, b, "mul", beta=beta), expected)


def test_add_form_and_gradient_direction():
    e = torch.tensor(3.0, requires_grad=True)
    loss = latency_aware_loss(torch.tensor(1.0), e, 1.5, "add", lam=0.5)
    assert loss.item() == pytest.approx(1.0 + 0.5 * 2.0)
    loss.backward()
    assert e.grad > 0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unknown latency loss"):
        latency_aware_loss(torch.tensor(1.0), torch.tensor(1.0), 1.0, "pow")
    with pytest.raises(ValueError, match="exceed 1 us"):
        latency_aware_loss(torch.tensor(1.0), torch.tensor(1.0), 0.0)
