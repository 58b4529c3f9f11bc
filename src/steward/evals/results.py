"""An evaluation's result: per case, what was checked and judged; per suite, whether every
required case passed and the pass rate of the scored ones. Written as JSON (read back as
a baseline) and as JUnit XML for CI systems.

Regression against a baseline:
- a required case that passed in the baseline and does not pass now is a regression;
- the scored pass rate may not drop by more than its noise. Each scored case is a
  Bernoulli trial, so the noise of a difference of two pass rates is the binomial
  standard error of that difference under the pooled rate p:
      noise = 1.96 · √(p(1-p)·(1/n_baseline + 1/n_now))
  (the two-sided 95% two-proportion z-test). A drop within it is not called a
  regression; with p of 0 or 1 the noise is 0 and any drop is one.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from steward.core.errors import InvalidInput, NotFoundError

PASSED, FAILED, UNCERTAIN, ERROR = "pass", "fail", "uncertain", "error"
Z95 = 1.96


@dataclass(slots=True)
class CaseResult:
    id: str
    required: bool
    outcome: str  # pass | fail | uncertain | error
    tags: list[str] = field(default_factory=list)
    run_id: str = ""
    status: str = ""
    output: str = ""
    seconds: float = 0.0
    cost_usd: float = 0.0
    checks: list[dict[str, Any]] = field(default_factory=list)  # name, passed, detail
    judged: list[dict[str, Any]] = field(default_factory=list)  # judge.Judged.as_dict()
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED

    def problems(self) -> list[str]:
        found = [f"{c['name']}: {c['detail']}" for c in self.checks if not c["passed"]]
        found += [
            f"judged {j['criterion']!r}: {j['verdict']} (mean {j['mean']:.2f}, "
            f"lower bound {j['lower'] if j['lower'] is not None else '-inf'}, "
            f"threshold {j['threshold']:g})"
            for j in self.judged
            if j["verdict"] != "pass"
        ]
        if self.error:
            found.append(self.error)
        return found


@dataclass(slots=True)
class SuiteResult:
    suite: str
    agent: str
    version: str
    systems: str
    started_at: float
    seconds: float = 0.0
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def required(self) -> list[CaseResult]:
        return [c for c in self.cases if c.required]

    @property
    def scored(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.required]

    @property
    def passed(self) -> bool:
        """Every required case passed (an uncertain judge is not a pass)."""
        return all(c.passed for c in self.required)

    @property
    def scored_rate(self) -> float | None:
        scored = self.scored
        return sum(c.passed for c in scored) / len(scored) if scored else None

    def summary(self) -> dict[str, Any]:
        required = self.required
        return {
            "passed": self.passed,
            "required_total": len(required),
            "required_passed": sum(c.passed for c in required),
            "scored_total": len(self.scored),
            "scored_passed": sum(c.passed for c in self.scored),
            "scored_rate": self.scored_rate,
            "uncertain": sum(c.outcome == UNCERTAIN for c in self.cases),
            "cost_usd": sum(c.cost_usd for c in self.cases),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "agent": self.agent,
            "version": self.version,
            "systems": self.systems,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "summary": self.summary(),
            "cases": [asdict(c) for c in self.cases],
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")

    def write_junit(self, path: Path) -> None:
        path.write_bytes(junit_xml(self))


def read_result(path: Path) -> SuiteResult:
    """A result written by `write_json` (a baseline). InvalidInput when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cases = [CaseResult(**c) for c in data["cases"]]
        return SuiteResult(
            data["suite"],
            data["agent"],
            data["version"],
            data["systems"],
            float(data["started_at"]),
            float(data["seconds"]),
            cases,
        )
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such result file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            f"{path}: not an evaluation result ({type(exc).__name__}: {exc})"
        ) from None


def junit_xml(result: SuiteResult) -> bytes:
    """JUnit XML: one <testcase> per case; a required case that did not pass is a
    <failure> (type fail, uncertain or error). A scored case that did not pass is
    <skipped> with its problems (it counts towards the pass rate, it fails no build)."""
    failures = sum(not c.passed for c in result.required)
    root = ET.Element("testsuites", tests=str(len(result.cases)), failures=str(failures))
    suite = ET.SubElement(
        root,
        "testsuite",
        name=result.suite,
        tests=str(len(result.cases)),
        failures=str(failures),
        errors="0",
        time=f"{result.seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("agent", result.agent),
        ("version", result.version),
        ("systems", result.systems),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for case in result.cases:
        element = ET.SubElement(
            suite,
            "testcase",
            classname=f"{result.suite}.{result.agent}",
            name=case.id,
            time=f"{case.seconds:.3f}",
        )
        if not case.required:
            cprops = ET.SubElement(element, "properties")
            ET.SubElement(cprops, "property", name="required", value="false")
        if not case.passed:
            problems = case.problems()
            first = problems[0] if problems else case.outcome
            if case.required:
                failure = ET.SubElement(element, "failure", type=case.outcome, message=first)
                failure.text = "\n".join(problems)
            else:
                ET.SubElement(element, "skipped", message=f"scored case: {case.outcome}: {first}")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


@dataclass(frozen=True, slots=True)
class Regressions:
    cases: list[str]  # required cases that passed in the baseline and do not now
    scored_drop: float | None  # baseline rate - current rate
    scored_noise: float | None
    scored_regressed: bool

    @property
    def any(self) -> bool:
        return bool(self.cases) or self.scored_regressed

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "scored_drop": self.scored_drop,
            "scored_noise": self.scored_noise,
            "scored_regressed": self.scored_regressed,
        }


def rate_noise(p1: float, n1: int, p2: float, n2: int) -> float:
    """1.96 standard errors of the difference of two pass rates (pooled)."""
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    return Z95 * math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))


def compare(baseline: SuiteResult, now: SuiteResult) -> Regressions:
    """Regressions of `now` against `baseline`, a result of the same suite."""
    if baseline.suite != now.suite:
        raise InvalidInput(f"baseline: a result of suite {baseline.suite}, not {now.suite}")
    was = {c.id: c for c in baseline.cases}
    lost = [c.id for c in now.required if c.id in was and was[c.id].passed and not c.passed]
    before, after = baseline.scored_rate, now.scored_rate
    if before is None or after is None:
        return Regressions(lost, None, None, False)
    drop = before - after
    noise = rate_noise(before, len(baseline.scored), after, len(now.scored))
    return Regressions(lost, drop, noise, drop > noise + 1e-12)
