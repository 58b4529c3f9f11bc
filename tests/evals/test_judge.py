"""The LLM judge: k scores, a verdict from their spread; through scripted models and the
loopback OpenAI-compatible server, never a real API."""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.openai_server import OpenAIServer
from steward.core.errors import ModelError
from steward.core.messages import ModelResponse
from steward.evals.judge import FAIL, PASS, UNCERTAIN, Judge, bounds, verdict
from steward.evals.load import load_suite_text
from steward.evals.run import evaluate
from steward.evals.suite import JudgeConfig
from steward.models.protocol import ModelRequest
from steward.spec.loader import load_spec


class Replies:
    """A scripted judge: one queued reply per call, in order."""

    name = "scripted-judge"

    def __init__(self, *texts: str) -> None:
        self.texts = deque(texts)
        self.requests: list[ModelRequest] = []

    async def respond(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        return ModelResponse(self.name, text=self.texts.popleft())


def config(runs: int = 5, threshold: float = 4.0) -> JudgeConfig:
    return JudgeConfig(model="openai:judge", runs=runs, threshold=threshold)


def test_bounds_are_the_one_sided_95_percent_t_interval() -> None:
    mean, lower, upper = bounds([4, 5, 4, 5, 5])
    half = 2.132 * math.sqrt(0.3) / math.sqrt(5)  # t(0.95, 4) · s / √k, s² = 0.3
    assert mean == pytest.approx(4.6)
    assert lower == pytest.approx(4.6 - half) and upper == pytest.approx(4.6 + half)
    assert bounds([3.0])[1] == -math.inf  # one score bounds nothing


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([4, 5, 4, 5, 5], PASS),  # lower bound 4.08 clears 4
        ([5, 3, 5, 3, 5], UNCERTAIN),  # mean 4.2 clears 4, its lower bound does not
        ([4, 4, 4, 4, 4], PASS),  # no spread: the mean decides
        ([2, 3, 2, 3, 2], FAIL),  # upper bound below 4
        ([3, 5, 4, 3, 4], UNCERTAIN),  # mean 3.8 below 4, upper bound above it
    ],
)
def test_verdict_uses_the_spread(scores: list[float], expected: str) -> None:
    assert verdict(scores, 4.0) == expected


def test_a_mean_over_the_threshold_is_not_a_pass_when_the_judge_flips() -> None:
    """deepeval #3110: a verdict near the threshold flips between re-runs. A single
    comparison of the mean would pass this one; the bound says uncertain."""
    model = Replies(*(json.dumps({"score": s, "reason": "x"}) for s in (5, 3, 5, 3, 5)))
    judged = asyncio.run(Judge(model, config()).judge("polite", "hi", "hello"))
    assert judged.mean == pytest.approx(4.2) and judged.mean > judged.threshold
    assert judged.verdict == UNCERTAIN
    assert len(model.requests) == 5


def test_unreadable_and_off_scale_replies_count_as_the_minimum() -> None:
    model = Replies('{"score": 5}', "no idea", '{"score": 9}', "score: 5", "5")
    judged = asyncio.run(Judge(model, config()).judge("polite", "hi", "hello"))
    assert judged.scores == (5.0, 1.0, 1.0, 5.0, 5.0)
    assert judged.unreadable == 2 and judged.verdict != PASS


def test_a_judge_that_fails_scores_the_minimum() -> None:
    class Down:
        name = "down"

        async def respond(self, request: ModelRequest) -> ModelResponse:
            raise ModelError("provider unavailable", code="model.unavailable")

    judged = asyncio.run(Judge(Down(), config(runs=3)).judge("polite", "hi", "hello"))
    assert judged.scores == (1.0, 1.0, 1.0) and judged.unreadable == 3 and judged.verdict == FAIL


def test_the_rubric_and_scale_reach_the_judge() -> None:
    model = Replies(*['{"score": 5}'] * 2)
    judge = Judge(model, config(runs=2), rubric="5: cites the order number")
    asyncio.run(judge.judge("accurate", "where is #10001", "Order #10001 shipped"))
    system, user = model.requests[0].messages
    assert "5: cites the order number" in system.content and "from 1 (worst) to 5" in system.content
    assert "<answer>\nOrder #10001 shipped\n</answer>" in user.content


# -- end to end: a suite's judged case, the judge behind the loopback OpenAI server ------

PROMPT = """\
name: desk
model: rules
evaluation_rubric: |
  5: names the order's status. 1: does not.
system_prompt: You answer order questions.
"""

SPEC = """\
name: desk
model: rules
prompt_file: prompts/desk.yaml
tools: [lookup_order]
decision_authority: {autonomous: [lookup_order]}
rules:
  intents:
    - name: order
      match: ['(?i)order']
      extract: {order_id: '#(\\d+)'}
      plan: [[{tool: lookup_order, args: {order_id: '{order_id}'}}]]
      answer: "Order {results.lookup_order.order_id} is {results.lookup_order.status}."
"""

SUITE = """\
name: desk-judged
systems: fixtures
judge:
  model: {name: "openai:judge-model", base_url: BASE, api_key_env: STEWARD_TEST_OPENAI_KEY}
  runs: 3
  threshold: 4
cases:
  - id: status
    input: "where is order #10001"
    fixtures: {lookup_order: {order_id: "10001", status: lost}}
    expect:
      status: succeeded
      answer: {contains: lost}
      judged: [names the status]
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv("STEWARD_TEST_OPENAI_KEY", "sk-test")
    with OpenAIServer() as running:
        yield running


def _agent(tmp_path: Path) -> Path:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "desk.yaml").write_text(PROMPT)
    (tmp_path / "desk.yaml").write_text(SPEC)
    return tmp_path / "desk.yaml"


@pytest.mark.parametrize(
    ("scores", "outcome"), [((5, 5, 5), "pass"), ((5, 3, 5), "uncertain"), ((1, 2, 1), "fail")]
)
def test_a_judged_case_through_the_loopback_provider(
    server: OpenAIServer, tmp_path: Path, scores: tuple[int, ...], outcome: str
) -> None:
    for score in scores:
        server.reply(json.dumps({"score": score, "reason": "checked"}))
    suite = load_suite_text(SUITE.replace("BASE", server.base_url), "suite.yaml")
    result = asyncio.run(evaluate(suite, load_spec(_agent(tmp_path))))
    case = result.cases[0]
    assert [c["passed"] for c in case.checks] == [True, True], case.checks
    assert case.outcome == outcome
    assert sorted(case.judged[0]["scores"]) == sorted(map(float, scores))  # asked concurrently
    assert result.passed is (outcome == "pass")
    asked = [r.body for r in server.requests]
    assert len(asked) == 3 and all(b["model"] == "judge-model" for b in asked)
    system = asked[0]["messages"][0]["content"]
    assert "5: names the order's status" in system  # the prompt file's evaluation_rubric
