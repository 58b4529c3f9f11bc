"""Control charts for drift: tabular CUSUM and EWMA, calibrated to a declared ARL₀.

river's released wheel has ADWIN and Page-Hinkley but no CUSUM/EWMA, so these are
implemented here (checked on river 0.26.1's wheel: drift/ holds ADWIN, KSWIN,
Page-Hinkley and the binary DDM/EDDM/FHDDM/HDDM detectors, none calibrated to an ARL₀).
Small, pure Python, no steward imports: a chart is a few floats of state, and its
parameters come from two declared numbers, the in-control average run length ARL₀
(observations between false alarms) and the shift worth detecting δ (in sigma units of
what the chart watches).

Both charts watch a standardised series z = (x - μ₀) / sigma0 that is N(0, 1) in control.

**CUSUM** (Page 1954; tabular two-sided form, Montgomery, *Introduction to Statistical
Quality Control*, §9.1):

    C⁺ₜ = max(0, C⁺ₜ₋₁ + zₜ - k)      C⁻ₜ = max(0, C⁻ₜ₋₁ - zₜ - k)

alarm when either exceeds h. k = δ/2 is the reference value that makes the chart
(near-)optimal for a shift of δ (Moustakides 1986). h is solved for the declared ARL₀
from Siegmund's approximation of a one-sided chart's ARL (Siegmund, *Sequential
Analysis*, 1985; Montgomery eq. 9.20):

    ARL(Δ) ≈ (exp(-2Δb) + 2Δb - 1) / (2Δ²),   Δ = δ_actual - k,  b = h + 1.166

and the two sides combine as 1/ARL = 1/ARL⁺ + 1/ARL⁻ (Montgomery eq. 9.21).

**EWMA** (Roberts 1959; Lucas & Saccucci, *Technometrics* 32(1), 1990):

    Zₜ = λ zₜ + (1 - λ) Zₜ₋₁,   alarm when |Zₜ| > L √(λ / (2 - λ))

(asymptotic limits, as in Lucas & Saccucci's tables). λ follows their advice: small
λ for small shifts (0.05 for δ ≤ 0.5, 0.10 for δ ≤ 1, 0.20 beyond). L is solved for the
declared ARL₀ from the chart's exact run-length integral equation (Crowder 1987),

    ARL(u) = 1 + (1/λ) ∫₋c^c ARL(y) φ((y - (1-λ)u)/λ - δ) dy,

solved by Nyström's method on Gauss-Legendre nodes: the same numbers as Lucas &
Saccucci's Markov-chain tables (λ=0.10, L=2.814 gives ARL₀ = 500; tests check this).

Both calibrations are tested against measured run lengths of simulated N(0, 1) streams
(tests/monitor/test_charts.py, benchmarks/bench_drift.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "Cusum",
    "Ewma",
    "cusum_arl",
    "cusum_h",
    "ewma_L",
    "ewma_arl",
    "ewma_lambda",
]

_SQRT2 = math.sqrt(2.0)


def _phi(x: float) -> float:
    """The standard normal CDF."""
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def _density(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


# -- CUSUM -----------------------------------------------------------------------------


def _siegmund(k: float, h: float, delta: float) -> float:
    """ARL of a one-sided upper CUSUM (k, h) when the mean is `delta` (Siegmund 1985)."""
    d = delta - k
    b = h + 1.166
    if abs(d) < 1e-9:
        return b * b
    return (math.exp(-2.0 * d * b) + 2.0 * d * b - 1.0) / (2.0 * d * d)


def cusum_arl(k: float, h: float, delta: float = 0.0) -> float:
    """ARL of the two-sided tabular CUSUM when the standardised mean is `delta`."""
    upper = _siegmund(k, h, delta)
    lower = _siegmund(k, h, -delta)
    return 1.0 / (1.0 / upper + 1.0 / lower)


def _bisect(arl: object, target: float, lo: float, hi: float) -> float:
    """The x in [lo, hi] where the increasing function `arl`(x) reaches `target`."""
    assert callable(arl)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if arl(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-6:
            break
    return 0.5 * (lo + hi)


@lru_cache(maxsize=256)
def cusum_h(arl0: float, k: float) -> float:
    """The decision interval h giving the two-sided CUSUM (reference value k) an
    in-control ARL of `arl0`."""
    if arl0 <= 1 or k <= 0:
        raise ValueError("a CUSUM needs arl0 > 1 and k > 0")
    return _bisect(lambda h: cusum_arl(k, h, 0.0), arl0, 0.0, 200.0)


# -- EWMA ------------------------------------------------------------------------------


def ewma_lambda(shift: float) -> float:
    """The smoothing constant for a shift of `shift` sigma (Lucas & Saccucci 1990: small λ
    detects small shifts sooner)."""
    if shift <= 0.5:
        return 0.05
    if shift <= 1.0:
        return 0.10
    return 0.20


@lru_cache(maxsize=8)
def _legendre(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Gauss-Legendre nodes and weights on [-1, 1] (Newton's method on P_n)."""
    nodes: list[float] = []
    weights: list[float] = []
    for i in range(1, n + 1):
        x = math.cos(math.pi * (i - 0.25) / (n + 0.5))
        for _ in range(100):
            p0, p1 = 1.0, x
            for j in range(2, n + 1):
                p0, p1 = p1, ((2 * j - 1) * x * p1 - (j - 1) * p0) / j
            dp = n * (x * p1 - p0) / (x * x - 1.0)
            step = p1 / dp
            x -= step
            if abs(step) < 1e-15:
                break
        nodes.append(x)
        weights.append(2.0 / ((1.0 - x * x) * dp * dp))
    return tuple(nodes), tuple(weights)


def _solve_linear(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (small dense systems)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        lead = m[col][col]
        for r in range(col + 1, n):
            factor = m[r][col] / lead
            if factor:
                row, top = m[r], m[col]
                for c in range(col, n + 1):
                    row[c] -= factor * top[c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        total = m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))
        x[r] = total / m[r][r]
    return x


def ewma_arl(lam: float, L: float, delta: float = 0.0, nodes: int = 48) -> float:
    """ARL of the two-sided EWMA (λ, L, asymptotic limits) started at 0 when the
    standardised mean is `delta` (Crowder's integral equation, Nyström's method)."""
    c = L * math.sqrt(lam / (2.0 - lam))
    xs, ws = _legendre(nodes)
    ys = [c * x for x in xs]
    wy = [c * w for w in ws]

    def kernel(y: float, u: float) -> float:
        return _density((y - (1.0 - lam) * u) / lam - delta) / lam

    a = [
        [(1.0 if i == j else 0.0) - wy[j] * kernel(ys[j], ys[i]) for j in range(nodes)]
        for i in range(nodes)
    ]
    arl = _solve_linear(a, [1.0] * nodes)
    return 1.0 + sum(wy[j] * kernel(ys[j], 0.0) * arl[j] for j in range(nodes))


@lru_cache(maxsize=256)
def ewma_L(arl0: float, lam: float) -> float:
    """The limit width L giving the two-sided EWMA (λ) an in-control ARL of `arl0`."""
    if arl0 <= 1 or not 0 < lam <= 1:
        raise ValueError("an EWMA needs arl0 > 1 and 0 < λ ≤ 1")
    # ARL grows roughly exponentially in L: bisect on log ARL for stability
    target = math.log(arl0)
    return _bisect(lambda L: math.log(ewma_arl(lam, L)), target, 0.1, 6.0)


# -- the charts ------------------------------------------------------------------------


@dataclass(slots=True)
class Cusum:
    """A two-sided tabular CUSUM over standardised observations."""

    k: float
    h: float
    upper: float = 0.0
    lower: float = 0.0
    last: float = 0.0  # the statistic of the last update, before any restart

    @classmethod
    def for_arl(cls, arl0: float, shift: float) -> Cusum:
        k = shift / 2.0
        return cls(k, cusum_h(arl0, k))

    def update(self, z: float) -> str | None:
        """Fold one standardised observation; "up"/"down" on an alarm (then restart)."""
        self.upper = max(0.0, self.upper + z - self.k)
        self.lower = max(0.0, self.lower - z - self.k)
        self.last = self.statistic
        side = "up" if self.upper > self.h else "down" if self.lower > self.h else None
        if side is not None:
            self.reset()
        return side

    def reset(self) -> None:
        self.upper = self.lower = 0.0

    @property
    def statistic(self) -> float:
        """The larger side, signed: positive when the upper side leads."""
        return self.upper if self.upper >= self.lower else -self.lower

    @property
    def limit(self) -> float:
        return self.h


@dataclass(slots=True)
class Ewma:
    """A two-sided EWMA over standardised observations (asymptotic limits)."""

    lam: float
    L: float
    value: float = 0.0
    last: float = 0.0

    @classmethod
    def for_arl(cls, arl0: float, shift: float) -> Ewma:
        lam = ewma_lambda(shift)
        return cls(lam, ewma_L(arl0, lam))

    @property
    def limit(self) -> float:
        return self.L * math.sqrt(self.lam / (2.0 - self.lam))

    def update(self, z: float) -> str | None:
        self.value = self.lam * z + (1.0 - self.lam) * self.value
        self.last = self.value
        limit = self.limit
        side = "up" if self.value > limit else "down" if self.value < -limit else None
        if side is not None:
            self.reset()
        return side

    def reset(self) -> None:
        self.value = 0.0

    @property
    def statistic(self) -> float:
        return self.value
