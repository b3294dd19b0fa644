import torch

from raynas.supernet.reinforce import RewardBaseline, reinforce_grads

REWARDS = torch.tensor([10.0, 10.5, 9.0, 11.0])  # large common offset: where a baseline matters


def _sample_grads(alpha, n, use_baseline, seed):
    gen = torch.Generator().manual_seed(seed)
    probs = torch.softmax(alpha, 0)
    baseline = RewardBaseline(0.9)
    grads = []
    for _ in range(n):
        i = int(torch.multinomial(probs, 1, generator=gen))
        reward = float(REWARDS[i])
        b = baseline.update(reward) if use_baseline else 0.0
        grads.append(reinforce_grads([probs], [i], reward - b)[0])
    return torch.stack(grads[50:])


def test_expected_gradient_is_the_gradient_of_expected_reward():
    alpha = torch.tensor([0.3, -0.2, 0.1, 0.0], requires_grad=True)
    probs = torch.softmax(alpha, 0)
    (-(probs * REWARDS).sum()).backward()
    exact = sum(probs[i].detach() * reinforce_grads([probs], [i], float(REWARDS[i]))[0] for i in range(4))
    torch.testing.assert_close(exact, alpha.grad)


def test_baseline_cuts_variance_and_keeps_the_mean():
    alpha = torch.tensor([0.3, -0.2, 0.1, 0.0])
    plain = _sample_grads(alpha, 4000, use_baseline=False, seed=0)
    based = _sample_grads(alpha, 4000, use_baseline=True, seed=0)
    assert based.var(0).sum() < 0.2 * plain.var(0).sum()
    probs = torch.softmax(alpha, 0)
    exact = sum(probs[i] * reinforce_grads([probs], [i], float(REWARDS[i]))[0] for i in range(4))
    torch.testing.assert_close(based.mean(0), exact, atol=0.05, rtol=0)


def test_baseline_is_a_moving_average_of_earlier_rewards():
    b = RewardBaseline(0.5)
    assert b.update(4.0) == 4.0
    assert b.update(8.0) == 4.0
    assert b.update(0.0) == 6.0
