"""One dispatch over event types for every consumer of the journal.

A consumer (the replay index, the projections, traces, metrics, logs, the console's
timeline, the CLI) keeps one `EventHandlers` registry: a handler per event type it acts
on, and an explicit list of the types it deliberately ignores. A type that is neither is a
gap: `missing()` names it, and tests/test_event_dispatch.py fails for every registry with
a gap, so a new event type cannot silently miss a consumer.

    handlers: EventHandlers[Consumer, [str], None] = EventHandlers("metrics")

    class Consumer:
        @handlers.on(RunStarted)
        def _started(self, event: RunStarted, run_id: str) -> None: ...

    handlers.ignore(ToolCallProposed, KeyCreated)
    handlers(consumer, event, run_id)  # the handler's result, or the fallback's

A handler takes the receiver first (a method's `self`, or any value the consumer passes),
then the event, then the consumer's own arguments. Dispatch is one dict lookup by the
event's class: this sits on the journal's commit path (projections).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from steward.core.events import EVENT_TYPES, Event

S = TypeVar("S")  # the receiver: a consumer instance, or a value the consumer passes
R = TypeVar("R")  # what a handler returns
P = ParamSpec("P")  # the consumer's further arguments
E = TypeVar("E", bound=Event)

__all__ = ["EVENT_TYPES", "EventHandlers", "UnhandledEvent"]


_REGISTRIES: list[EventHandlers[Any, Any, Any]] = []


def _nothing(*_: object, **__: object) -> None:
    return None


class UnhandledEvent(LookupError):
    """An event reached a registry that neither handles nor ignores its type."""


class EventHandlers(Generic[S, P, R]):
    """Handlers by event type, with the types deliberately ignored.

    `fallback` answers ignored types (a consumer that must return something, like the
    timeline's generic step); without one, an ignored type gives None. An event whose
    type is neither handled nor ignored raises UnhandledEvent: a gap fails loudly (the
    telemetry consumers count it as an error), never silently.
    """

    def __init__(
        self,
        consumer: str,
        *,
        fallback: Callable[Concatenate[S, Event, P], R] | None = None,
        universe: Iterable[type[Event]] = EVENT_TYPES,
    ) -> None:
        self.consumer = consumer
        self.universe = tuple(universe)
        self._handlers: dict[type[Event], Callable[..., R]] = {}
        self._ignored: set[type[Event]] = set()
        self._fallback = fallback
        # one lookup per dispatch: handlers, and ignored types mapped to the fallback
        self._table: dict[type[Event], Callable[..., R | None]] = {}
        _REGISTRIES.append(self)

    # -- declaring ---------------------------------------------------------------------

    def on(
        self, event_type: type[E]
    ) -> Callable[[Callable[Concatenate[S, E, P], R]], Callable[Concatenate[S, E, P], R]]:
        """Register the decorated function as the handler of `event_type`."""

        def register(
            handler: Callable[Concatenate[S, E, P], R],
        ) -> Callable[Concatenate[S, E, P], R]:
            self._claim(event_type)
            self._handlers[event_type] = self._table[event_type] = handler
            return handler

        return register

    def ignore(self, *event_types: type[Event]) -> None:
        """Declare types this consumer has nothing to do with (a deliberate choice)."""
        for event_type in event_types:
            self._claim(event_type)
            self._ignored.add(event_type)
            self._table[event_type] = self._fallback or _nothing

    def _claim(self, event_type: type[Event]) -> None:
        if event_type in self._handlers or event_type in self._ignored:
            raise ValueError(f"{self.consumer}: {event_type.__name__} is declared twice")

    # -- dispatching -------------------------------------------------------------------

    def __call__(self, receiver: S, event: Event, *args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            handler = self._table[type(event)]
        except KeyError:
            raise self._unhandled(event) from None
        return handler(receiver, event, *args, **kwargs)

    def _unhandled(self, event: Event) -> UnhandledEvent:
        return UnhandledEvent(
            f"{self.consumer} has no handler for {type(event).__name__}: "
            "handle it or declare it ignored"
        )

    def handles(self, event_type: type[Event]) -> bool:
        return event_type in self._handlers

    @property
    def handled(self) -> frozenset[type[Event]]:
        return frozenset(self._handlers)

    @property
    def ignored(self) -> frozenset[type[Event]]:
        return frozenset(self._ignored)

    def missing(self) -> list[type[Event]]:
        """Event types neither handled nor ignored (empty when the consumer is complete)."""
        return [t for t in self.universe if t not in self._handlers and t not in self._ignored]

    @classmethod
    def registries(cls) -> tuple[EventHandlers[Any, Any, Any], ...]:
        """Every registry created so far (the completeness test walks them)."""
        return tuple(_REGISTRIES)
