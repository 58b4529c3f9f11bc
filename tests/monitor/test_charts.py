"""The charts' maths: published ARLs, and measured ARL₀ on simulated in-control streams."""

from __future__ import annotations

import random
from statistics import mean

import pytest

from steward.monitor.charts import Cusum, Ewma, cusum_arl, cusum_h, ewma_arl, ewma_L


def test_siegmund_matches_montgomerys_table() -> None:
    # Montgomery, Table 9.3/9.4: k = 0.5, h = 5 gives ARL₀ ≈ 465 and ARL(1 sigma) ≈ 10.4
    assert cusum_arl(0.5, 5.0) == pytest.approx(465, rel=0.02)
    assert cusum_arl(0.5, 5.0, 1.0) == pytest.approx(10.4, rel=0.02)
    assert cusum_h(465, 0.5) == pytest.approx(5.0, abs=0.02)


@pytest.mark.parametrize(
    ("lam", "L", "arl1"),
    [(0.05, 2.615, 11.4), (0.10, 2.814, 10.3), (0.20, 2.962, 10.5), (0.40, 3.054, 14.3)],
)
def test_ewma_integral_equation_matches_lucas_saccucci(lam: float, L: float, arl1: float) -> None:
    # Lucas & Saccucci (1990) / Montgomery Table 9.11: these (λ, L) give ARL₀ = 500
    assert ewma_arl(lam, L) == pytest.approx(500, rel=0.01)
    assert ewma_arl(lam, L, 1.0) == pytest.approx(arl1, rel=0.02)
    assert ewma_L(500, lam) == pytest.approx(L, abs=0.005)


def _run_length(chart: Cusum | Ewma, rng: random.Random, cap: int) -> int:
    for n in range(1, cap + 1):
        if chart.update(rng.gauss(0.0, 1.0)) is not None:
            return n
    return cap


@pytest.mark.parametrize(
    ("make", "shift"), [(Cusum.for_arl, 1.0), (Cusum.for_arl, 0.5), (Ewma.for_arl, 1.0)]
)
def test_measured_arl0_is_the_declared_one(make: object, shift: float) -> None:
    """Declared ARL₀ = 200; 600 simulated in-control runs (seeded) measure it within 15%
    (the standard error of a mean of 600 near-exponential run lengths is ~4%)."""
    assert callable(make)
    rng = random.Random(14)
    lengths = [_run_length(make(200.0, shift), rng, 20_000) for _ in range(600)]
    assert mean(lengths) == pytest.approx(200, rel=0.15)


def test_a_shift_is_detected_far_sooner_than_a_false_alarm() -> None:
    rng = random.Random(3)
    delays = []
    for _ in range(300):
        chart = Cusum.for_arl(1000.0, 1.0)
        for n in range(1, 10_000):
            if chart.update(rng.gauss(1.0, 1.0)) == "up":
                delays.append(n)
                break
    assert mean(delays) == pytest.approx(cusum_arl(0.5, chart.h, 1.0), rel=0.15)
    assert mean(delays) < 20
