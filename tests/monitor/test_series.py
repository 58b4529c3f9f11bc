"""One monitored series: warm-up, batching of rates, calibration in runs, detection, and
its state surviving a round trip."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from statistics import mean

import pytest

from steward.monitor.charts import Cusum, Ewma, cusum_arl
from steward.monitor.series import Series, SeriesConfig

Draw = Callable[[random.Random], float]


def bernoulli(p: float) -> Draw:
    return lambda rng: 1.0 if rng.random() < p else 0.0


def lognormal(median: float, spread: float) -> Draw:
    return lambda rng: median * math.exp(rng.gauss(0.0, spread))


def run_length(config: SeriesConfig, before: Draw, after: Draw, rng: random.Random) -> int:
    """Runs after the warm-up until the first alarm (the change is at run 0)."""
    series = Series(config)
    for _ in range(config.warmup):
        assert series.observe(before(rng)) is None
    for n in range(1, 1_000_000):
        if series.observe(after(rng)) is not None:
            return n
    raise AssertionError("no alarm")


@pytest.mark.parametrize(
    ("config", "draw"),
    [
        (SeriesConfig("accuracy", arl0=500, warmup=20_000, shift=0.02), bernoulli(0.92)),
        (SeriesConfig("escalation_rate", "ewma", 500, 20_000, shift=0.05), bernoulli(0.1)),
        (SeriesConfig("latency", arl0=500, warmup=5_000, shift_percent=20), lognormal(2, 0.5)),
    ],
    ids=["accuracy-cusum", "escalation-ewma", "latency-cusum"],
)
def test_arl0_in_runs_is_the_declared_one(config: SeriesConfig, draw: Draw) -> None:
    """Rates are charted over batches (n·min(p,1-p) ≥ 5) and latency on a log scale; the
    declared ARL₀ counts runs. A long warm-up takes the baseline's estimation error out,
    so what is measured is the calibration (120 seeded streams: within 25%)."""
    rng = random.Random(7)
    lengths = [run_length(config, draw, draw, rng) for _ in range(120)]
    assert mean(lengths) == pytest.approx(config.arl0, rel=0.25)


def test_rates_are_batched_so_the_normal_approximation_holds() -> None:
    series = Series(SeriesConfig("accuracy", warmup=1000, shift=0.02))
    rng = random.Random(1)
    for _ in range(1000):
        series.observe(bernoulli(0.92)(rng))
    assert series.batch * min(0.92, 0.08) >= 5 - 0.5  # estimated p is near 0.92
    assert isinstance(series.chart, Cusum)
    # the 2-point drop in sigma of one batch mean, and k half of it
    shift = 0.02 / math.sqrt(series.mean * (1 - series.mean)) * math.sqrt(series.batch)  # type: ignore[operator]
    assert series.chart.k == pytest.approx(shift / 2, rel=1e-6)


def test_a_latency_rise_is_caught_far_sooner_than_a_false_alarm() -> None:
    """A 20% rise is a 0.36 sigma shift of log latency (sigma 0.5): the chart needs about
    60 runs, as Siegmund's approximation predicts, where a false alarm takes 1000."""
    config = SeriesConfig("latency", arl0=1000, warmup=2000, shift_percent=20)
    rng = random.Random(5)
    delays = [run_length(config, lognormal(2, 0.5), lognormal(2.4, 0.5), rng) for _ in range(80)]
    probe = Series(config)
    for _ in range(2000):
        probe.observe(lognormal(2, 0.5)(rng))
    assert isinstance(probe.chart, Cusum)
    predicted = cusum_arl(probe.chart.k, probe.chart.h, math.log(1.2) / probe.sigma)
    assert mean(delays) == pytest.approx(predicted, rel=0.25)
    assert mean(delays) < config.arl0 / 10


def test_the_direction_of_an_alarm_is_the_metrics() -> None:
    config = SeriesConfig("latency", arl0=200, warmup=200, shift_percent=50)
    rng = random.Random(2)
    series = Series(config)
    for _ in range(200):
        series.observe(lognormal(1, 0.2)(rng))
    alarm = None
    while alarm is None:
        alarm = series.observe(lognormal(0.5, 0.2)(rng))
    assert alarm.direction == "down"
    assert alarm.baseline_mean == pytest.approx(1.0, rel=0.05)
    assert alarm.recent_mean < 0.7
    assert abs(alarm.statistic) > alarm.limit
    assert series.alarm_points == [alarm.observations]
    assert series.statistic == 0.0  # the chart restarted


@pytest.mark.parametrize("chart", ["cusum", "ewma"])
def test_state_round_trips_through_json(chart: str) -> None:
    config = SeriesConfig("confidence", chart, arl0=300, warmup=50, shift_sigma=1.0)
    rng = random.Random(3)
    whole, restored = Series(config), Series(config)
    values = [rng.gauss(0.8, 0.05) for _ in range(400)]
    for v in values[:170]:
        whole.observe(v)
        restored.observe(v)
    restored = Series.from_state(config, json.loads(json.dumps(restored.to_state())))
    for v in values[170:]:
        assert whole.observe(v) == restored.observe(v)
    assert whole.to_state() == restored.to_state()
    assert isinstance(restored.chart, Cusum if chart == "cusum" else Ewma)


def test_non_finite_observations_are_not_folded() -> None:
    series = Series(SeriesConfig("cost", warmup=10))
    for value in (math.nan, math.inf):
        series.observe(value)
    assert series.warm == []
