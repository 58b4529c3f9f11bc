"""One monitored series: one metric of one agent version, from warm-up to alarms.

A series first collects `warmup` observations and estimates its in-control baseline
(mean μ₀ and sigma0) from them; from then on it feeds a chart (charts.py) with standardised
batch means z = (x̄ - μ₀) / (sigma0 / √n) and reports the side of each alarm.

What is watched, per metric:
- rates (accuracy, escalation, denial) are Bernoulli: each run is 0 or 1. A chart
  calibrated for normal observations would see a 0/1 series' skew (at p = 0.92 a single
  0 is a 3.4sigma move), so these are charted over batches of n runs with n·min(p, 1-p) ≥ 5,
  the usual rule for the normal approximation of a binomial proportion (Montgomery §7.2.1).
  The ARL₀ is declared in runs, so the chart is calibrated for ARL₀ / n batches. We chose
  this over the Bernoulli CUSUM of Reynolds & Stoumbos (1999) because one calibration
  then serves every metric; the cost is a delay of up to one batch, which the
  benchmark's detection delays include. tests/monitor/test_series.py measures the ARL₀.
- latency and cost are positive and right-skewed; they are charted on a log scale, where
  a relative change (a 20% latency rise) is a shift of log(1.2) whatever the baseline.
- confidence is charted as it is.

The baseline is estimated from a finite warm-up, and an estimated sigma makes the realised
ARL₀ vary around the declared one (Jones, Champ & Rigdon 2004); a longer `warmup` narrows it.
After an alarm the chart restarts; a signal on the same side within the next `arl0`
runs is the same episode (drawn on the chart, not raised again): one alarm, one webhook.
A side that stays quiet for `arl0` runs may alarm again.

Pure: no I/O and no steward imports beyond this package; state round-trips through
`to_state()` / `Series.from_state()` (JSON-safe), so it survives a restart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from steward.monitor.charts import Cusum, Ewma

__all__ = ["BERNOULLI", "LOG_SCALE", "METRICS", "Alarm", "Series", "SeriesConfig"]

METRICS = ("accuracy", "confidence", "escalation_rate", "denial_rate", "latency", "cost")
BERNOULLI = frozenset({"accuracy", "escalation_rate", "denial_rate"})
LOG_SCALE = {"latency": 1e-3, "cost": 1e-6}  # metric -> floor added before the log
MIN_EXPECTED = 5.0  # n·min(p, 1-p) per batch for the normal approximation
MAX_BATCH = 500
POINTS = 240  # chart points kept for the console


@dataclass(frozen=True, slots=True)
class SeriesConfig:
    """What the spec declares for one metric. Exactly one of the shifts is set:
    `shift` in the metric's own units, `shift_sigma` in sigma of one observation,
    `shift_percent` of the baseline mean."""

    metric: str
    chart: str = "cusum"
    arl0: float = 1000.0
    warmup: int = 200
    shift: float | None = None
    shift_sigma: float | None = None
    shift_percent: float | None = None
    batch: int | None = None


@dataclass(frozen=True, slots=True)
class Alarm:
    metric: str
    chart: str
    direction: str  # up | down: the metric (not its log) rose or fell
    statistic: float
    limit: float
    baseline_mean: float  # in the metric's own units
    recent_mean: float
    observations: int  # since the baseline was set


@dataclass(slots=True)
class Series:
    config: SeriesConfig
    warm: list[float] = field(default_factory=list)  # transformed warm-up observations
    mean: float | None = None  # baseline, transformed scale
    sigma: float = 0.0  # of one transformed observation
    batch: int = 1
    pending: list[float] = field(default_factory=list)
    chart: Cusum | Ewma | None = None
    observations: int = 0  # after the warm-up
    alarms: int = 0  # alarms raised
    signals: int = 0  # chart signals, including those within a standing alarm
    latched: dict[str, int] = field(default_factory=dict)  # side -> observations at last signal
    points: list[tuple[int, float]] = field(default_factory=list)  # (observations, statistic)
    alarm_points: list[int] = field(default_factory=list)  # every signal
    raised_points: list[int] = field(default_factory=list)  # the signals that raised an alarm

    # -- observing ---------------------------------------------------------------------

    def observe(self, value: float) -> Alarm | None:
        """Fold one observation (a run's value); an Alarm when the chart signals."""
        if not math.isfinite(value):
            return None
        x = self._transform(value)
        if self.mean is None:
            self.warm.append(x)
            if len(self.warm) >= self.config.warmup:
                self._set_baseline()
            return None
        self.observations += 1
        self.pending.append(x)
        if len(self.pending) < self.batch:
            return None
        assert self.chart is not None
        batch_mean = sum(self.pending) / len(self.pending)
        self.pending.clear()
        z = (batch_mean - self.mean) / (self.sigma / math.sqrt(self.batch))
        side = self.chart.update(z)
        shown = self.chart.last
        self._point(shown)
        if side is None:
            return None
        self.signals += 1
        self.alarm_points.append(self.observations)
        self.alarm_points[:] = self.alarm_points[-POINTS:]
        last = self.latched.get(side)
        self.latched[side] = self.observations
        if last is not None and self.observations - last <= self.config.arl0:
            return None  # the alarm stands: the chart restarted and signalled again
        self.alarms += 1
        self.raised_points.append(self.observations)
        self.raised_points[:] = self.raised_points[-POINTS:]
        return Alarm(
            metric=self.config.metric,
            chart=self.config.chart,
            direction=side,
            statistic=shown,
            limit=self.chart.limit,
            baseline_mean=self._untransform(self.mean),
            recent_mean=self._untransform(batch_mean),
            observations=self.observations,
        )

    def _point(self, statistic: float) -> None:
        self.points.append((self.observations, round(statistic, 6)))
        if len(self.points) > POINTS:
            del self.points[: len(self.points) - POINTS]

    # -- the baseline ------------------------------------------------------------------

    def _set_baseline(self) -> None:
        config, warm = self.config, self.warm
        n = len(warm)
        mean = sum(warm) / n
        if config.metric in BERNOULLI:
            # add-one-half so an all-0 or all-1 warm-up still has a sigma
            p = min(max(mean, 0.5 / n), 1.0 - 0.5 / n)
            sigma = math.sqrt(p * (1.0 - p))
            batch = max(config.batch or 1, math.ceil(MIN_EXPECTED / min(p, 1.0 - p)))
        else:
            var = sum((x - mean) ** 2 for x in warm) / max(1, n - 1)
            sigma = math.sqrt(var)
            batch = config.batch or 1
        sigma = max(sigma, 1e-9 * max(1.0, abs(mean)))
        batch = int(min(batch, MAX_BATCH, max(1.0, config.arl0 / 10.0)))
        self.mean, self.sigma, self.batch = mean, sigma, batch
        self.warm = []
        shift = self._shift_sigma() * math.sqrt(batch)  # in sigma of one batch mean
        arl = config.arl0 / batch
        self.chart = (
            Cusum.for_arl(arl, shift) if config.chart == "cusum" else Ewma.for_arl(arl, shift)
        )

    def _shift_sigma(self) -> float:
        """The declared shift in sigma of one transformed observation."""
        config = self.config
        assert self.mean is not None
        if config.shift_sigma is not None:
            return config.shift_sigma
        if config.metric in LOG_SCALE:
            base = self._untransform(self.mean)
            if config.shift_percent is not None:
                moved = math.log1p(config.shift_percent / 100.0)
            elif config.shift is not None:
                moved = math.log((base + config.shift) / base) if base > 0 else 1.0
            else:
                return 1.0
            return max(abs(moved) / self.sigma, 1e-3)
        if config.shift_percent is not None:
            absolute = abs(self.mean) * config.shift_percent / 100.0
        elif config.shift is not None:
            absolute = config.shift
        else:
            return 1.0
        return max(absolute / self.sigma, 1e-3)

    def _transform(self, value: float) -> float:
        floor = LOG_SCALE.get(self.config.metric)
        return math.log(max(value, 0.0) + floor) if floor is not None else value

    def _untransform(self, value: float) -> float:
        floor = LOG_SCALE.get(self.config.metric)
        return math.exp(value) - floor if floor is not None else value

    # -- what it shows -----------------------------------------------------------------

    @property
    def warming(self) -> bool:
        return self.mean is None

    @property
    def statistic(self) -> float:
        return self.chart.statistic if self.chart is not None else 0.0

    @property
    def limit(self) -> float:
        return self.chart.limit if self.chart is not None else 0.0

    @property
    def baseline(self) -> float | None:
        return None if self.mean is None else self._untransform(self.mean)

    # -- state -------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        chart: dict[str, float] | None = None
        if isinstance(self.chart, Cusum):
            chart = {"k": self.chart.k, "h": self.chart.h, "upper": self.chart.upper,
                     "lower": self.chart.lower}  # fmt: skip
        elif isinstance(self.chart, Ewma):
            chart = {"lam": self.chart.lam, "L": self.chart.L, "value": self.chart.value}
        return {
            "warm": self.warm,
            "mean": self.mean,
            "sigma": self.sigma,
            "batch": self.batch,
            "pending": self.pending,
            "chart": chart,
            "observations": self.observations,
            "alarms": self.alarms,
            "signals": self.signals,
            "latched": self.latched,
            "points": self.points,
            "alarm_points": self.alarm_points,
            "raised_points": self.raised_points,
        }

    @classmethod
    def from_state(cls, config: SeriesConfig, state: dict[str, Any]) -> Series:
        series = cls(config)
        series.warm = [float(x) for x in state.get("warm", [])]
        mean = state.get("mean")
        series.mean = None if mean is None else float(mean)
        series.sigma = float(state.get("sigma", 0.0))
        series.batch = int(state.get("batch", 1))
        series.pending = [float(x) for x in state.get("pending", [])]
        chart = state.get("chart")
        if isinstance(chart, dict) and "h" in chart:
            series.chart = Cusum(chart["k"], chart["h"], chart["upper"], chart["lower"])
        elif isinstance(chart, dict) and "L" in chart:
            series.chart = Ewma(chart["lam"], chart["L"], chart["value"])
        series.observations = int(state.get("observations", 0))
        series.alarms = int(state.get("alarms", 0))
        series.signals = int(state.get("signals", 0))
        series.latched = {str(k): int(v) for k, v in state.get("latched", {}).items()}
        series.points = [(int(n), float(s)) for n, s in state.get("points", [])]
        series.alarm_points = [int(n) for n in state.get("alarm_points", [])]
        series.raised_points = [int(n) for n in state.get("raised_points", [])]
        return series
