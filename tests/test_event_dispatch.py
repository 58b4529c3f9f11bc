"""One dispatch over event types (core/dispatch.py): every consumer declares, for every
event type in core/events.py's AnyEvent, a handler or a deliberate ignore."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from steward.core import events as ev
from steward.core.dispatch import EVENT_TYPES, EventHandlers, UnhandledEvent

# The consumers of the journal's stream that must account for every event type.
CONSUMERS = {
    "runtime.history": "steward.runtime.history",
    "store.projections": "steward.store.projections",
    "telemetry.tracing": "steward.telemetry.tracing",
    "telemetry.metrics": "steward.telemetry.metrics",
    "telemetry.logs": "steward.telemetry.logs",
    "server.console.timeline": "steward.server.console.timeline",
    "cli.runs": "steward.cli.run_details",
    "monitor.drift": "steward.monitor.observations",
}


def _registries() -> dict[str, EventHandlers[Any, Any, Any]]:
    for module in CONSUMERS.values():
        importlib.import_module(module)
    return {r.consumer: r for r in EventHandlers.registries() if r.consumer in CONSUMERS}


def test_every_consumer_has_one_registry() -> None:
    assert sorted(_registries()) == sorted(CONSUMERS)


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_consumer_accounts_for_every_event_type(consumer: str) -> None:
    registry = _registries()[consumer]
    missing = [t.__name__ for t in registry.missing()]
    assert not missing, (
        f"{consumer} neither handles nor ignores {missing}: add a handler "
        f"(@handlers.on(Type)) or list the type in its ignore(...)"
    )


def test_the_union_is_the_universe() -> None:
    """Every event class core/events.py defines is in AnyEvent (so in every check)."""
    defined = {c for c in ev.Event.__subclasses__() if c.__module__ == ev.__name__}
    assert set(EVENT_TYPES) == defined


def test_a_new_event_type_is_a_gap_in_every_consumer() -> None:
    """What a new event type does: the completeness check names it in each consumer."""

    class Novel(ev.Event, tag="test.novel", frozen=True):
        n: int

    for registry in _registries().values():
        probe: EventHandlers[Any, Any, Any] = EventHandlers(
            "probe", universe=(*registry.universe, Novel)
        )
        probe.ignore(*registry.ignored)
        for handled in registry.handled:
            probe.on(handled)(lambda *a: None)
        assert probe.missing() == [Novel]


def test_dispatch_handles_ignores_and_refuses() -> None:
    handlers: EventHandlers[list[str], [int], str] = EventHandlers(
        "test", universe=(ev.RunStarted, ev.RunResumed, ev.RunWaiting)
    )

    @handlers.on(ev.RunStarted)
    def _started(seen: list[str], event: ev.RunStarted, n: int) -> str:
        seen.append(event.agent)
        return f"started {n}"

    handlers.ignore(ev.RunResumed)
    seen: list[str] = []
    assert handlers(seen, ev.RunStarted("a", "1", "hi"), 7) == "started 7"
    assert seen == ["a"]
    assert handlers(seen, ev.RunResumed("x"), 7) is None
    assert handlers.missing() == [ev.RunWaiting]
    with pytest.raises(UnhandledEvent, match="test has no handler for RunWaiting"):
        handlers(seen, ev.RunWaiting("r"), 7)
    with pytest.raises(ValueError, match="declared twice"):
        handlers.ignore(ev.RunStarted)


def test_fallback_answers_ignored_types() -> None:
    def generic(_: None, event: ev.Event) -> str:
        return ev.event_type(event)

    handlers: EventHandlers[None, [], str] = EventHandlers(
        "test", fallback=generic, universe=(ev.RunResumed,)
    )
    handlers.ignore(ev.RunResumed)
    assert handlers(None, ev.RunResumed("x")) == "run.resumed"
