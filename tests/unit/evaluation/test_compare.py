import pytest
from scipy import stats

from raynas.api import RANDOM_WS
from raynas.evaluation.compare import HAND, budget_steps, dominance, headline, paired_comparisons, paired_p_value, summarize

PROXYLESS = "proxyless"


def row(method, seed, acc, ms=1.0, target="cpu-1t", budget=2.0, width=1.0):
    return {
        "target": target,
        "budget_ms": None if method == HAND else budget,
        "method": method,
        "seed": seed,
        "test_acc": acc,
        "measured_ms": ms,
        "width_mult": width,
    }


def test_gap_is_paired_by_seed_and_p_value_is_the_paired_t_test():
    nas, rnd = [0.95, 0.96, 0.94], [0.93, 0.95, 0.90]
    rows = (
        [row(PROXYLESS, s, a, ms=1.8) for s, a in enumerate(nas)]
        + [row(RANDOM_WS, s, a, ms=1.7) for s, a in enumerate(rnd)]
        + [row(HAND, 0, 0.99)]
    )
    [c] = paired_comparisons(rows)
    assert c["seeds"] == 3 and c["gap_pp"] == pytest.approx(100 * (sum(nas) - sum(rnd)) / 3)
    assert c["nas_acc_mean"] == pytest.approx(0.95) and c["random_ms_mean"] == pytest.approx(1.7)
    assert c["p_value"] == pytest.approx(stats.ttest_rel(nas, rnd).pvalue)


def test_nas_is_read_against_the_hand_designed_curve_at_its_own_latency():
    """Widths at 1 ms (80 %) and 3 ms (90 %): a NAS net at 2 ms meets the curve at 85 %; one at 0.5 ms the fastest width."""
    hand = [row(HAND, s, a, ms=ms, width=w) for s in (0, 1) for w, ms, a in ((0.5, 1.0, 0.80), (1.0, 3.0, 0.90))]
    nas = [row(PROXYLESS, 0, 0.87, ms=2.0), row(PROXYLESS, 1, 0.84, ms=0.5)]
    [c] = paired_comparisons(hand + nas + [row(RANDOM_WS, s, 0.8) for s in (0, 1)])
    assert c["hand_acc_at_nas_ms"] == pytest.approx((0.85 + 0.80) / 2) and (c["hand_seeds"], c["hand_inside"]) == (2, 1)
    assert c["hand_gap_pp"] == pytest.approx(100 * ((0.87 - 0.85) + (0.84 - 0.80)) / 2)
    assert c["hand_p_value"] == pytest.approx(stats.ttest_rel([0.87, 0.84], [0.85, 0.80]).pvalue)
    [alone] = paired_comparisons(nas + [row(RANDOM_WS, s, 0.8) for s in (0, 1)])
    assert alone["hand_gap_pp"] is None and alone["hand_inside"] == 0


def test_unpaired_seeds_are_left_out_and_one_seed_has_no_p_value():
    rows = [row(PROXYLESS, 0, 0.9), row(RANDOM_WS, 0, 0.8), row(PROXYLESS, 1, 0.99)]
    [c] = paired_comparisons(rows)
    assert c["seeds"] == 1 and c["p_value"] is None and c["gap_pp"] == pytest.approx(10.0)
    assert paired_p_value([0.9, 0.8], [0.8, 0.7]) is None  # constant difference: t undefined


def test_headline_counts_wins_over_comparisons():
    rows = [
        row(PROXYLESS, 0, 0.9, budget=1.0),
        row(RANDOM_WS, 0, 0.8, budget=1.0),
        row(PROXYLESS, 0, 0.7, budget=2.0),
        row(RANDOM_WS, 0, 0.8, budget=2.0),
    ]
    head = headline(paired_comparisons(rows))
    pooled = head.pop("nas_minus_random_pooled")
    assert head == {
        "nas_minus_random_mean_pp": pytest.approx(0.0),
        "nas_wins": 1,
        "comparisons": 2,
        "nas_minus_hand_curve_mean_pp": None,
    }
    assert pooled["pairs"] == 2 and pooled["cells"] == 2 and pooled["mean"] == pytest.approx(0.0)
    assert pooled["ci95"] == pytest.approx([-10.0, 10.0])  # all of one cell or all of the other
    assert headline([]) == {
        "nas_minus_random_pooled": None,
        "nas_minus_random_mean_pp": None,
        "nas_wins": 0,
        "comparisons": 0,
        "nas_minus_hand_curve_mean_pp": None,
    }


def test_summarize_groups_hand_designed_by_width():
    rows = [row(HAND, s, 0.9 + 0.01 * s, width=w) for w in (0.5, 1.0) for s in range(2)]
    out = summarize(rows, ("width_mult",))
    assert [o["width_mult"] for o in out] == [0.5, 1.0] and out[0]["acc_mean"] == pytest.approx(0.905) and out[0]["n"] == 2


def test_budget_steps_weigh_each_change_against_the_seeds_noise():
    """Budget 1 ms: 80 / 82 %; 2 ms: 90 / 92 % (a rise of 10 points, far beyond noise); 3 ms: 89 / 91 % (a fall of 1 within it)."""
    accs = {1.0: (0.80, 0.82), 2.0: (0.90, 0.92), 3.0: (0.89, 0.91)}
    rows = [
        row(m, s, a if m == PROXYLESS else 0.5, budget=b)
        for b, pair in accs.items()
        for s, a in enumerate(pair)
        for m in (PROXYLESS, RANDOM_WS)
    ]
    rows += [row(PROXYLESS, 0, 0.7, budget=1.0, target="other"), row(RANDOM_WS, 0, 0.6, budget=1.0, target="other")]
    steps = budget_steps(paired_comparisons(rows))
    assert [(s["from_ms"], s["to_ms"]) for s in steps] == [(1.0, 2.0), (2.0, 3.0)]  # no step across targets
    noise = 2 * 100 * (2 * 0.0141421356**2 / 2) ** 0.5  # two seeds each, std 1.41 points
    assert (
        steps[0]["change_pp"] == pytest.approx(10.0) and steps[0]["noise_pp"] == pytest.approx(noise, rel=1e-4) and steps[0]["beyond_noise"]
    )
    assert steps[1]["change_pp"] == pytest.approx(-1.0) and not steps[1]["beyond_noise"]


def test_dominance_needs_both_accuracy_and_latency():
    c = {"gap_pp": 1.0, "nas_ms_mean": 0.9, "random_ms_mean": 1.0}
    assert dominance(c) == "dominates"
    assert dominance(c | {"gap_pp": -1.0, "nas_ms_mean": 1.1}) == "dominated"
    assert dominance(c | {"nas_ms_mean": 1.1}) == "trade-off" and dominance(c | {"gap_pp": -0.5}) == "trade-off"
