"""Journal streams for the monitor tests: a monitored agent's runs as the runner writes
them, at a controlled clock."""

from __future__ import annotations

import random
from dataclasses import dataclass

from steward.core.decision import allow, deny
from steward.core.events import GateDecided, ModelResponded, RunFinished, RunStarted, RunStatus
from steward.core.messages import ModelResponse, Usage
from steward.spec import load_spec_text
from steward.spec.models import Monitors
from steward.store import Journal

SPEC = """
name: desk
model: scripted
monitors:
  arl0: 200
  warmup: 40
  metrics:
    latency: {shift_percent: 50}
    cost: {shift_percent: 50, chart: ewma}
    confidence: {shift_sigma: 1}
    escalation_rate: {shift: 0.2}
    denial_rate: {shift: 0.2}
    accuracy: {shift: 0.2, warmup: 20}
"""


def monitors(
    webhook: str | None = None, arl0: float = 200, warmup: int = 40
) -> dict[str, Monitors]:
    spec = load_spec_text(SPEC, "desk.yaml").spec
    assert spec.monitors is not None
    section = spec.monitors.model_copy(update={"webhook": webhook, "arl0": arl0, "warmup": warmup})
    return {"desk": section}


@dataclass
class Clock:
    now: float = 1_000_000.0
    run: int = 0

    def tick(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def one_run(
    journal: Journal, clock: Clock, rng: random.Random, *, version: str = "v1",
    latency: float = 2.0, agent: str = "desk",
) -> str:  # fmt: skip
    """A run's events as the runner writes them, with a lognormal latency around `latency`."""
    clock.run += 1
    run_id = f"run_{clock.run:012x}"
    journal.append(run_id, RunStarted(agent, version, "hi"), clock.tick(1.0))
    cost = Usage(cost_usd=0.01 * (1 + rng.random()))
    journal.append(run_id, ModelResponded(0, ModelResponse("m", usage=cost), 5.0), clock.tick(0.1))
    denied = rng.random() < 0.2
    decision = deny("policy.forbidden", "no") if denied else allow("ok", "ok")
    journal.append(run_id, GateDecided(f"{run_id}:1:a", "t", "policy", decision), clock.tick(0.1))
    took = latency * (1.0 + 0.1 * rng.gauss(0, 1))
    escalated = rng.random() < 0.3
    status = RunStatus.ESCALATED if escalated else RunStatus.SUCCEEDED
    confidence = min(1.0, max(0.0, rng.gauss(0.8, 0.05)))
    journal.append(run_id, RunFinished(status, "ok", confidence), clock.tick(took - 0.2))
    return run_id
