import itertools

import pytest

from raynas.hardware.timing import interleaved_ms, paired_latency_ms, quantile, steady_latency_ms


def test_quantile_interpolates_between_order_statistics():
    assert quantile([5.0, 1.0, 3.0, 2.0, 4.0], 0.0) == 1.0
    assert quantile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert quantile([1.0, 2.0], 0.1) == pytest.approx(1.1)
    assert quantile([7.0], 0.1) == 7.0
    with pytest.raises(ValueError, match="no timings"):
        quantile([])


def test_rounds_interleave_calls_after_their_warmups():
    log = []
    calls = {k: (lambda k=k: log.append(k)) for k in "ab"}
    samples = interleaved_ms(calls, warmup=1, repeats=4, rounds=2, timer=lambda call: call() or 1.0)
    assert samples == {"a": [1.0] * 4, "b": [1.0] * 4} and "".join(log) == "aaabbbaaabbb"


def test_steady_latency_ignores_slowed_calls():
    """One-sided noise (a loaded machine slows calls, never speeds them) leaves the low quantile alone."""
    slow = itertools.cycle([1.0] * 7 + [1.6] * 3)  # 30 % of calls hit while a neighbour is busy
    result = steady_latency_ms({"net": lambda: None}, warmup=0, repeats=100, timer=lambda call: next(slow))
    assert result["net"] == 1.0


def test_paired_timing_cancels_load_that_slows_both_calls():
    """Load changing between pairs (1x, 1.5x, 2x) scales the yardstick and the call alike: the ratio
    is exact, and the yardstick's low quantile gives the unloaded scale."""
    loads = itertools.cycle([1.0, 1.0, 1.5, 1.5, 2.0, 2.0])  # one value per yardstick + call pair
    calls = {"a": lambda: 2.0, "b": lambda: 3.0}
    result = paired_latency_ms(calls, lambda: 0.5, warmup=2, repeats=30, rounds=3, timer=lambda call: call() * next(loads))
    assert result == pytest.approx({"a": 2.0, "b": 3.0})


def test_paired_timing_in_a_given_unit():
    calls = {"a": lambda: 2.0}
    result = paired_latency_ms(calls, lambda: 0.5, warmup=0, repeats=4, rounds=2, timer=lambda call: call(), yardstick_ms=0.25)
    assert result == {"a": 1.0}
