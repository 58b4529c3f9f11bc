"""Shared helpers for the benchmark scripts: argument parsing, timing loops, percentiles,
and output (a Rich table by default, one JSON object with `--json`).

Every script defines `async def collect(quick: bool) -> Report` and ends with
`raise SystemExit(main(collect, __doc__))`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Collect = Callable[[bool], Awaitable["Report"]]


# -- statistics ------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    frac = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * frac


@dataclass(slots=True)
class Measurement:
    """Timed samples of one operation. A sample may cover several items (a batch, a run of
    K steps): the µs figures are then per item (amortised). Throughput is items/s over the
    sum of the samples, or over `wall_ns` when samples overlap in time."""

    key: str
    label: str
    samples_ns: list[int]
    per_sample: int = 1
    unit: str = "call"
    note: str = ""
    wall_ns: int | None = None  # set when samples overlap (concurrent producers)

    @property
    def items(self) -> int:
        return len(self.samples_ns) * self.per_sample

    def _us(self, pct: float) -> float:
        ordered = sorted(self.samples_ns)
        return percentile(ordered, pct) / self.per_sample / 1000.0

    @property
    def p50_us(self) -> float:
        return self._us(50)

    def figures(self) -> dict[str, Any]:
        ordered = sorted(self.samples_ns)
        total_ns = sum(ordered)
        per = self.per_sample
        elapsed_ns = self.wall_ns if self.wall_ns is not None else total_ns
        return {
            "label": self.label,
            "unit": self.unit,
            "samples": len(ordered),
            "per_sample": per,
            "items": self.items,
            "p50_us": percentile(ordered, 50) / per / 1000.0,
            "p95_us": percentile(ordered, 95) / per / 1000.0,
            "p99_us": percentile(ordered, 99) / per / 1000.0,
            "mean_us": (total_ns / len(ordered)) / per / 1000.0 if ordered else math.nan,
            "max_us": (ordered[-1] / per / 1000.0) if ordered else math.nan,
            "throughput_per_s": (self.items * 1e9 / elapsed_ns) if elapsed_ns else math.nan,
            "note": self.note,
        }


@dataclass(slots=True)
class Figure:
    """A derived figure (overhead, ratio, ...) with an optional target and verdict."""

    key: str
    label: str
    value: float
    unit: str = ""
    target: str = ""
    ok: bool | None = None

    def figures(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "ok": self.ok,
        }


@dataclass(slots=True)
class Report:
    name: str
    title: str
    quick: bool
    params: dict[str, Any] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    summary: list[Figure] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, measurement: Measurement) -> Measurement:
        self.measurements.append(measurement)
        return measurement

    def figure(
        self,
        key: str,
        label: str,
        value: float,
        unit: str = "",
        target: str = "",
        ok: bool | None = None,
    ) -> Figure:
        item = Figure(key, label, value, unit, target, ok)
        self.summary.append(item)
        return item

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "title": self.title,
            "quick": self.quick,
            "seconds": round(self.seconds, 3),
            "environment": environment(),
            "params": self.params,
            "measurements": {m.key: m.figures() for m in self.measurements},
            "summary": {f.key: f.figures() for f in self.summary},
        }


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
    }


# -- timing loops ----------------------------------------------------------------------


def sample_sync(fn: Callable[[int], object], n: int, warmup: int) -> list[int]:
    """Call fn(0 .. warmup-1) untimed, then time fn(warmup .. warmup+n-1) one by one."""
    clock = time.perf_counter_ns
    for i in range(warmup):
        fn(i)
    gc.collect()
    samples = [0] * n
    for j in range(n):
        i = warmup + j
        start = clock()
        fn(i)
        samples[j] = clock() - start
    return samples


async def sample_async(fn: Callable[[int], Awaitable[object]], n: int, warmup: int) -> list[int]:
    """As sample_sync, awaiting each call; indices are unique across warm-up and samples."""
    clock = time.perf_counter_ns
    for i in range(warmup):
        await fn(i)
    gc.collect()
    samples = [0] * n
    for j in range(n):
        i = warmup + j
        start = clock()
        await fn(i)
        samples[j] = clock() - start
    return samples


def scaled(quick: bool, full: int, fast: int) -> int:
    return fast if quick else full


# -- output ----------------------------------------------------------------------------


def _fmt(value: float, digits: int = 1) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if abs(value) >= 1_000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: ""}[ok]


def render(report: Report) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150, highlight=False)
    params = ", ".join(f"{k}={v}" for k, v in report.params.items())
    mode = "quick" if report.quick else "full"
    console.print(f"\n[bold]{report.title}[/bold]  ({mode} run, {report.seconds:.1f} s)")
    env = environment()
    console.print(
        f"[dim]Python {env['python']}, SQLite {env['sqlite']}, {env['cpus']} CPUs"
        + (f"; {params}" if params else "")
        + "[/dim]"
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("measurement", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    for column in ("p50 µs", "p95 µs", "p99 µs", "mean µs", "per s"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("note", style="dim")
    for m in report.measurements:
        f = m.figures()
        table.add_row(
            m.label,
            f"{f['items']:,}",
            m.unit,
            _fmt(f["p50_us"], 2),
            _fmt(f["p95_us"], 2),
            _fmt(f["p99_us"], 2),
            _fmt(f["mean_us"], 2),
            _fmt(f["throughput_per_s"], 0),
            m.note,
        )
    console.print(table)
    if report.summary:
        summary = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        summary.add_column("figure", no_wrap=True)
        summary.add_column("value", justify="right")
        summary.add_column("target")
        summary.add_column("")
        for item in report.summary:
            summary.add_row(
                item.label,
                f"{_fmt(item.value, 2)} {item.unit}".rstrip(),
                item.target,
                _verdict(item.ok),
            )
        console.print(summary)


def _finite(value: Any) -> Any:
    """JSON has no NaN: an undefined figure becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def parse_args(description: str | None, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small iteration counts (a few seconds)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    return parser.parse_args(argv)


def main(collect: Collect, description: str | None, argv: Sequence[str] | None = None) -> int:
    args = parse_args(description, argv)
    started = time.perf_counter()
    report = asyncio.run(collect(args.quick))
    report.seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(_finite(report.to_json()), indent=2, allow_nan=False, default=str))
    else:
        render(report)
    return 0
