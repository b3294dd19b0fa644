"""Shared timing loop of the measurement backends: warm-ups, interleaved rounds, a yardstick.

On a shared VM the core's speed changes by up to 1.6x for seconds at a time (a busy SMT sibling
or neighbour). Timed alone, the same 100 networks measured twice a minute apart ranked alike only
at Kendall tau 0.67 (medians) or 0.80 (10th percentiles). So on CPU every timed call is paired with
an adjacent call of a fixed reference block, the *yardstick*: a load spike slows both, and their
ratio stays put. Latency = median ratio x the yardstick's steady latency (its 10th percentile: the
unloaded machine). The same two passes then agreed at tau 0.92, within 0.9 % per network (std).
The yardstick runs twice before each timed call and only its second run is timed: right after a
network its caches are cold, and a cold yardstick read 1.3x (batch 1) to 2.3x (batch 16) its
tight-loop time, which deflated big ops more than small ones and made a table ms that many
wall-clock ms (experiments/bench/latency_accuracy.py's independent harness). Costs two short extra
calls per timed call. A latency table records the yardstick latency it was
built with and later measurements reuse it, so a table and the networks timed against it minutes
later share one unit even when the machine's idle speed has moved.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Hashable

STEADY_QUANTILE = 0.1


class Latencies(dict):
    """Latency in ms per key, in the unit of a yardstick (see above), with ``wall_per_unit``: the
    wall-clock ms one unit ms took while these were timed (1.0 when timed in wall-clock ms), and
    ``files``: per key, the file (name, bytes) that was timed, where a backend timed one -- what ships."""

    def __init__(self, values: dict, wall_per_unit: float = 1.0, files: dict | None = None) -> None:
        super().__init__(values)
        self.wall_per_unit = wall_per_unit
        self.files: dict[Hashable, tuple[str, bytes]] = files or {}

    def __reduce__(self):
        return (Latencies, (dict(self), self.wall_per_unit, self.files))


Call = Callable[[], object]
Timer = Callable[[Call], float]  # runs a call once, returns its duration in ms


def wall_clock_ms(call: Call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1e3


def quantile(values: list[float], q: float = STEADY_QUANTILE) -> float:
    """The ``q`` quantile of ``values``, linearly interpolated between order statistics."""
    if not values:
        raise ValueError("no timings to summarize")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def interleaved_ms(
    calls: dict[Hashable, Call], *, warmup: int, repeats: int, rounds: int = 10, timer: Timer = wall_clock_ms
) -> dict[Hashable, list[float]]:
    """``repeats`` timed runs of every call, in ``rounds`` round-robin passes each preceded by
    ``warmup`` untimed runs, so slow drifts of the machine spread over all calls alike."""
    samples: dict[Hashable, list[float]] = {key: [] for key in calls}
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for key, call in calls.items():
            for _ in range(warmup):
                call()
            samples[key].extend(timer(call) for _ in range(per_round))
    return samples


def steady_latency_ms(
    calls: dict[Hashable, Call], *, warmup: int, repeats: int, rounds: int = 10, timer: Timer = wall_clock_ms
) -> Latencies:
    """Latency in ms of each call on an unloaded machine: the low quantile of interleaved timings
    (for devices whose own clock is not shared, such as a GPU timed with CUDA events)."""
    samples = interleaved_ms(calls, warmup=warmup, repeats=repeats, rounds=rounds, timer=timer)
    return Latencies({key: quantile(times) for key, times in samples.items()})


def paired_latency_ms(
    calls: dict[Hashable, Call],
    yardstick: Call,
    *,
    warmup: int,
    repeats: int,
    rounds: int = 10,
    timer: Timer = wall_clock_ms,
    yardstick_ms: float | None = None,
) -> Latencies:
    """Latency in ms of each call, each timing paired with an adjacent yardstick timing (see above).

    ``yardstick_ms`` fixes the scale (say, the one a latency table was built with), so timings taken
    minutes apart share one unit; by default it is this session's own steady yardstick latency.
    The result's ``wall_per_unit`` turns them into this moment's wall-clock ms.
    """
    yard: list[float] = []

    def ratio(call: Call) -> float:
        yardstick()  # untimed: warms the caches the previous call evicted (a cold yardstick read 1.3-2.3x slow)
        reference = timer(yardstick)
        yard.append(reference)
        return timer(call) / reference

    ratios = interleaved_ms(calls, warmup=warmup, repeats=repeats, rounds=rounds, timer=ratio)
    now = quantile(yard)
    scale = yardstick_ms or now
    return Latencies({key: statistics.median(r) * scale for key, r in ratios.items()}, wall_per_unit=now / scale)
