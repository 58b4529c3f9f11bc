"""Drift detection: steward's control charts (monitor/series.py: CUSUM and EWMA calibrated
to a declared ARL₀) against a fixed-threshold alarm tuned, in the same run, to the same
false-alarm rate.

Streams (seeded, synthetic, with a known change point):
- accuracy: each run is correct with p = 0.92; the change drops it 2 points to 0.90;
- latency: lognormal, median 2 s, sigma 0.5 in log space; the change raises it 20%.

Each chart is declared with `arl0: 1000` (runs between false alarms) and the shift worth
detecting (`shift: 0.02`, `shift_percent: 20`). The baseline is set from a long warm-up
(20,000 in-control runs), so what is measured is the calibration, not the estimation
error of a short warm-up (README: "Watching for drift" says what a short one costs).

The fixed-threshold alarms are what a dashboard rule does: "accuracy over the last 200
runs below T" and "mean latency over the last 50 runs above T" (and, for latency, "one
run slower than T"). Each T is tuned here by bisection on simulated in-control streams
until its measured ARL₀ is the charts' 1000, so both sides raise false alarms equally
often and the detection delays compare fairly.

Measured: ARL₀ (mean runs to a false alarm on stable streams; the false-alarm rate is
1/ARL₀) and the detection delay (runs from the change to the alarm; the change comes 500
runs after the baseline, streams that alarmed before it are not counted), plus the cost
of one observation. `--quick` uses fewer streams.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from statistics import mean, median

from _common import Measurement, Report, main, sample_sync, scaled
from steward.monitor.series import Series, SeriesConfig

ARL0 = 1000.0
CHANGE_AT = 500
CAP = 40_000
P0, P1 = 0.92, 0.90
MEDIAN, SPREAD, RISE = 2.0, 0.5, 1.2

Draw = Callable[[random.Random], float]
Detector = Callable[[], Callable[[float], bool]]


def bernoulli(p: float) -> Draw:
    return lambda rng: 1.0 if rng.random() < p else 0.0


def lognormal(median_s: float) -> Draw:
    return lambda rng: median_s * math.exp(rng.gauss(0.0, SPREAD))


# -- detectors: each is a factory of "fold one run; True on an alarm" ------------------


def chart(config: SeriesConfig, baseline: Series) -> Detector:
    """A fresh copy of a series whose baseline is already set (the chart at zero)."""
    state = baseline.to_state()

    def make() -> Callable[[float], bool]:
        series = Series.from_state(config, state)
        return lambda value: series.observe(value) is not None

    return make


def baseline_series(config: SeriesConfig, draw: Draw, rng: random.Random) -> Series:
    series = Series(config)
    while series.warming:
        series.observe(draw(rng))
    return series


def window(size: int, threshold: float, below: bool, history: Draw, seed: int) -> Detector:
    """Mean of the last `size` runs crossing `threshold`; the window starts full of
    in-control history (a dashboard that has been running)."""

    def make() -> Callable[[float], bool]:
        rng = random.Random(seed)
        values = deque((history(rng) for _ in range(size)), maxlen=size)
        total = [sum(values)]

        def fold(value: float) -> bool:
            total[0] += value - values[0]
            values.append(value)
            level = total[0] / size
            return level < threshold if below else level > threshold

        return fold

    return make


def single(threshold: float) -> Detector:
    return lambda: lambda value: value > threshold


# -- measuring -------------------------------------------------------------------------


def run_length(detector: Detector, draw: Draw, rng: random.Random) -> int:
    fold = detector()
    for n in range(1, CAP + 1):
        if fold(draw(rng)):
            return n
    return CAP


def arl(detector: Detector, draw: Draw, streams: int, seed: int) -> float:
    rng = random.Random(seed)
    return mean(run_length(detector, draw, rng) for _ in range(streams))


def delays(detector: Detector, before: Draw, after: Draw, streams: int, seed: int) -> list[int]:
    """Runs from the change to the alarm, for streams with no alarm before the change."""
    rng = random.Random(seed)
    found = []
    for _ in range(streams):
        fold = detector()
        if any(fold(before(rng)) for _ in range(CHANGE_AT)):
            continue  # a false alarm before the change
        for n in range(1, CAP + 1):
            if fold(after(rng)):
                found.append(n)
                break
    return found


def tune(make: Callable[[float], Detector], lo: float, hi: float, draw: Draw,
         rising: bool, streams: int) -> float:  # fmt: skip
    """The threshold in [lo, hi] whose measured ARL₀ is ARL0 (bisection; `rising`: a
    higher threshold alarms less often)."""
    for i in range(18):
        mid = 0.5 * (lo + hi)
        measured = arl(make(mid), draw, streams, seed=1000 + i)
        if (measured < ARL0) == rising:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


async def collect(quick: bool) -> Report:
    streams = scaled(quick, 400, 120)
    tuning = scaled(quick, 200, 60)
    report = Report("drift", "Drift detection: control charts vs fixed thresholds", quick)
    report.params = {"arl0": ARL0, "streams": streams, "change_at": CHANGE_AT}
    rng = random.Random(14)

    cases: list[tuple[str, Draw, Draw, list[tuple[str, Detector]]]] = []

    acc_before, acc_after = bernoulli(P0), bernoulli(P1)
    acc_detectors: list[tuple[str, Detector]] = []
    for kind in ("cusum", "ewma"):
        config = SeriesConfig("accuracy", kind, ARL0, 20_000, shift=P0 - P1)
        acc_detectors.append((kind, chart(config, baseline_series(config, acc_before, rng))))
    acc_threshold = tune(
        lambda t: window(200, t, True, acc_before, 7), 0.80, P0, acc_before, False, tuning
    )
    acc_detectors.append((f"fixed: 200-run accuracy < {acc_threshold:.4f}", window(
        200, acc_threshold, True, acc_before, 7)))  # fmt: skip
    cases.append(("accuracy 0.92 -> 0.90", acc_before, acc_after, acc_detectors))

    lat_before, lat_after = lognormal(MEDIAN), lognormal(MEDIAN * RISE)
    lat_detectors: list[tuple[str, Detector]] = []
    for kind in ("cusum", "ewma"):
        config = SeriesConfig("latency", kind, ARL0, 20_000, shift_percent=(RISE - 1) * 100)
        lat_detectors.append((kind, chart(config, baseline_series(config, lat_before, rng))))
    mean_threshold = tune(
        lambda t: window(50, t, False, lat_before, 8), 2.0, 4.0, lat_before, True, tuning
    )
    lat_detectors.append((f"fixed: 50-run mean > {mean_threshold:.3f} s", window(
        50, mean_threshold, False, lat_before, 8)))  # fmt: skip
    # one run over the in-control 99.9th percentile: exactly ARL₀ = 1000
    single_threshold = MEDIAN * math.exp(SPREAD * 3.090232)
    lat_detectors.append((f"fixed: one run > {single_threshold:.2f} s", single(single_threshold)))
    cases.append(("latency +20%", lat_before, lat_after, lat_detectors))

    for stream, before, after, detectors in cases:
        for name, detector in detectors:
            measured = arl(detector, before, streams, seed=21)
            found = delays(detector, before, after, streams, seed=22)
            key = f"{stream.split()[0]}_{name.split(':')[0].replace(' ', '_')}"
            report.figure(
                f"{key}_arl0", f"{stream} · {name} · ARL₀ (declared {ARL0:.0f})", measured,
                "runs", "within 20% of 1000", abs(measured - ARL0) <= 0.2 * ARL0,
            )  # fmt: skip
            report.figure(
                f"{key}_delay", f"{stream} · {name} · detection delay, median (mean)",
                median(found), f"runs ({mean(found):.0f})",
            )  # fmt: skip

    config = SeriesConfig("latency", "cusum", ARL0, 20_000, shift_percent=20)
    timed = Series.from_state(config, baseline_series(config, lat_before, rng).to_state())
    values = [lat_before(rng) for _ in range(60_000)]
    report.add(Measurement(
        "observe", "one observation folded (latency, CUSUM)",
        sample_sync(lambda i: timed.observe(values[i]), scaled(quick, 50_000, 10_000), 5_000),
        unit="run", note="Series.observe: log, batch mean, chart update",
    ))  # fmt: skip
    return report


if __name__ == "__main__":
    raise SystemExit(main(collect, __doc__))
