"""Starting and finishing a run, the same for the built-in runner and for a program that
drives its own loop through the `steward` facade (steward/embed/): the kill switch read
as stored now, the agent version on record, the user's words masked before they reach
the journal, and the final answer held to the spec's confidence threshold."""

from __future__ import annotations

from dataclasses import dataclass

from steward.core.errors import StewardError
from steward.core.events import RunStatus
from steward.gate.stages.agent_state import AgentStateCache
from steward.runtime.agent import AgentRuntime
from steward.runtime.engine import RunStore
from steward.security.scanners import IDENTIFIERS, redact_text


class AgentDisabled(StewardError):
    code = "agent.disabled"


def check_enabled(states: AgentStateCache, agent: str) -> None:
    """Raise AgentDisabled unless the agent's kill switch, read from the store now, is on."""
    states.forget(agent)  # a new run reads the switch as stored now
    if switched_off(states, agent) is not None:
        raise AgentDisabled(f"agent {agent} is disabled; no new runs start", code="agent.disabled")


def switched_off(states: AgentStateCache, agent: str, *, unread_stops: bool = True) -> str | None:
    """Why the agent's kill switch stops it now (None: it is on), read through the cache
    the gate's kill-switch stage reads: a dict lookup, the store asked at most once a
    second per agent, and at once after this process flipped the switch (it forgets the
    entry). A state that cannot be read stops it (fail closed), as the gate does, unless
    `unread_stops` is False: a run under way is not ended for good by a store fault that
    may pass (the gate denies each of its calls meanwhile)."""
    state = states(agent)
    if state.enabled or (state.unknown and not unread_stops):
        return None
    if state.unknown:
        return f"agent {agent}'s state cannot be read ({state.unknown}); the run stops"
    return f"agent {agent} was disabled (kill switch) while its run was active; the run stops"


def mask_input(text: str) -> tuple[str, tuple[str, ...]]:
    """The user's words as the journal and the model may see them, and the kinds masked.
    Card numbers, SSNs and IBANs never enter the journal or reach the model: no support
    workflow needs them, and a journal that holds them is in PCI scope."""
    return redact_text(text, IDENTIFIERS)


class VersionMemory:
    """Records each agent version's spec text once (content-addressed) per holder."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._saved: set[tuple[str, str]] = set()

    def remember(self, agent: AgentRuntime) -> None:
        marker = (agent.name, agent.version)
        if marker not in self._saved:
            source = agent.loaded.prompt
            prompt = (source.path, source.text) if source is not None else None
            self.store.save_agent_version(agent.name, agent.version, agent.loaded.text, prompt)
            self._saved.add(marker)


@dataclass(frozen=True, slots=True)
class Ending:
    status: RunStatus
    reason_code: str = ""
    reason: str = ""


def final_answer(agent: AgentRuntime, confidence: float | None) -> Ending:
    """How a final answer ends its run: succeeded, or escalated when its confidence is
    below the spec's threshold. A model that reports no confidence passes only when the
    spec asks for none."""
    threshold = agent.loaded.spec.escalation.confidence_below
    if (confidence is None and threshold > 0) or (
        confidence is not None and confidence < threshold
    ):
        shown = "none" if confidence is None else f"{confidence:.2f}"
        return Ending(
            RunStatus.ESCALATED,
            "escalation.low_confidence",
            f"confidence {shown} is below {threshold:.2f}; "
            f"escalated to {agent.loaded.spec.escalation.to}",
        )
    return Ending(RunStatus.SUCCEEDED)
