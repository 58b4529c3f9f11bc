"""The price table: USD per token by model, versioned, with its source and date.

Cost is computed from the usage a provider reports (input, output, cached-input and
cache-write tokens), or from the offline estimate when it reports none. An unknown model
has no price: callers that enforce a budget must treat that as undecidable and fail closed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from steward.core.errors import StewardError
from steward.core.messages import Usage

PRICES_ENV = "STEWARD_PRICES"
_MILLION = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Rate:
    input: float
    output: float
    cached_input: float
    context: int | None = None  # the model's context window, in tokens
    cache_write: float | None = None  # writing the prompt cache (Anthropic); None: input rate

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        written = min(usage.cache_write_tokens, usage.input_tokens - cached)
        fresh = usage.input_tokens - cached - written
        write_rate = self.input if self.cache_write is None else self.cache_write
        return (
            fresh * self.input
            + cached * self.cached_input
            + written * write_rate
            + usage.output_tokens * self.output
        ) / _MILLION


@dataclass(frozen=True, slots=True)
class PriceTable:
    version: str
    source: str
    rates: dict[str, Rate]

    def rate(self, model: str) -> Rate | None:
        """`provider:model`, `model`, or a dated variant (`gpt-4o-2024-08-06`) of a listed model."""
        name = model.split(":", 1)[-1]
        if name in self.rates:
            return self.rates[name]
        best = max((k for k in self.rates if name.startswith(k + "-")), key=len, default=None)
        return self.rates[best] if best is not None else None

    def cost(self, model: str, usage: Usage) -> float | None:
        rate = self.rate(model)
        return None if rate is None else rate.cost(usage)

    def merged(self, other: PriceTable) -> PriceTable:
        return PriceTable(f"{self.version}+{other.version}", f"{self.source}; {other.source}",
                          {**self.rates, **other.rates})  # fmt: skip


def _parse(data: Any, where: str) -> PriceTable:
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise StewardError(
            f"{where}: a price table needs a `models` mapping", code="prices.invalid"
        )
    rates: dict[str, Rate] = {}
    for name, row in data["models"].items():
        try:
            values = [float(row[k]) for k in ("input", "output", "cached_input")]
        except (KeyError, TypeError, ValueError):
            raise StewardError(
                f"{where}: models.{name} needs numeric input, output and cached_input",
                code="prices.invalid",
            ) from None
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise StewardError(
                f"{where}: models.{name} rates must be finite and ≥ 0", code="prices.invalid"
            )
        cache_write = row.get("cache_write")
        if cache_write is not None and (
            isinstance(cache_write, bool)
            or not isinstance(cache_write, int | float)
            or not math.isfinite(cache_write)
            or cache_write < 0
        ):
            raise StewardError(
                f"{where}: models.{name}.cache_write must be a finite number ≥ 0",
                code="prices.invalid",
            )
        context = row.get("context")
        if context is not None and (not isinstance(context, int) or context < 1):
            raise StewardError(
                f"{where}: models.{name}.context must be a positive integer", code="prices.invalid"
            )
        rates[str(name)] = Rate(values[0], values[1], values[2], context=context,
                                cache_write=None if cache_write is None else float(cache_write))  # fmt: skip
    return PriceTable(str(data.get("version", "custom")), str(data.get("source", where)), rates)


def default_prices() -> PriceTable:
    text = (
        resources.files("steward.models").joinpath("data/prices.yaml").read_text(encoding="utf-8")
    )
    return _parse(yaml.safe_load(text), "steward/models/data/prices.yaml")


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The shipped table, overridden by `path` or $STEWARD_PRICES when given."""
    table = default_prices()
    override = path or os.environ.get(PRICES_ENV)
    if not override:
        return table
    try:
        data = yaml.safe_load(Path(override).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StewardError(
            f"cannot read price table {override}: {exc}", code="prices.invalid"
        ) from None
    return table.merged(_parse(data, str(override)))
