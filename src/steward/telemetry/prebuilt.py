"""Spans built after the fact, handed straight to the SDK's span processors.

The trace consumer knows every span's start and end from the journal, so it needs none
of what the SDK's live Span does per call (locks, attribute validation and copying,
sampling, context bookkeeping), which costs tens of microseconds a span on the journal's
GIL. A PrebuiltTracer keeps the same start_span / set_attribute / add_event / end calls
and, at end, makes one `ReadableSpan` (the SDK's own immutable span) for the configured
processors: BatchSpanProcessor to OTLP, exactly as the SDK would.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import Attributes, AttributeValue

from steward import __version__

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_DROPPED = TraceFlags(TraceFlags.DEFAULT)


def _value(value: Any) -> Any:
    """Sequences become tuples, as the SDK stores them (immutable, and what exporters expect)."""
    return tuple(value) if isinstance(value, list) else value


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: _value(v) for k, v in (attributes or {}).items() if v is not None}


class PrebuiltSpan(trace_api.Span):
    __slots__ = ("_attributes", "_context", "_ended", "_events", "_kind", "_links", "_name", "_parent",
                 "_start", "_status", "_tracer")  # fmt: skip

    def __init__(self, tracer: PrebuiltTracer, name: str, context: SpanContext, parent: SpanContext | None,
                 kind: SpanKind, attributes: dict[str, AttributeValue], links: Sequence[Link],
                 start: int) -> None:  # fmt: skip
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._links = links
        self._start = start
        self._events: list[Event] = []
        self._status = Status(StatusCode.UNSET)
        self._ended = False

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self._attributes[key] = _value(value)

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        self._attributes.update(_clean(attributes))

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        self._events.append(Event(name, _clean(attributes), timestamp))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        self._links = [*self._links, Link(context, attributes)]

    def update_name(self, name: str) -> None:
        self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self._status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(self, exception: BaseException, attributes: Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:  # fmt: skip
        attrs = {"exception.type": type(exception).__name__, "exception.message": str(exception)}
        self.add_event("exception", {**attrs, **(attributes or {})}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        if not self._context.trace_flags.sampled:
            return
        tracer = self._tracer
        span = ReadableSpan(
            self._name, self._context, self._parent, tracer.resource, self._attributes, tuple(self._events),
            tuple(self._links), self._kind, status=self._status, start_time=self._start,
            end_time=end_time if end_time is not None else self._start, instrumentation_scope=tracer.scope,
        )  # fmt: skip
        for processor in tracer.processors:
            processor.on_end(span)


class PrebuiltTracer(trace_api.Tracer):
    def __init__(
        self,
        processors: Sequence[SpanProcessor],
        resource: Resource | None = None,
        ratio: float = 1.0,
    ) -> None:
        """`ratio`: the share of traces kept, decided by trace id as the SDK's
        TraceIdRatioBased sampler does; children follow their parent."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"a sampling ratio is between 0 and 1, not {ratio}")
        self._bound = int(ratio * (1 << 64))
        self.processors = list(processors)
        self.resource = resource or Resource.create({"service.name": "steward"})
        self.scope = InstrumentationScope("steward", __version__)
        self._random = random.Random()

    def start_span(self, name: str, context: Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
                   attributes: Mapping[str, Any] | None = None, links: Sequence[Link] | None = None,
                   start_time: int | None = None, record_exception: bool = True,
                   set_status_on_exception: bool = True) -> PrebuiltSpan:  # fmt: skip
        parent = (
            trace_api.get_current_span(context).get_span_context() if context is not None else None
        )
        if parent is not None and not parent.is_valid:
            parent = None
        if parent is not None:
            trace_id, flags = parent.trace_id, parent.trace_flags
        else:
            trace_id = self._random.getrandbits(128) or 1
            flags = _SAMPLED if (trace_id & 0xFFFFFFFFFFFFFFFF) < self._bound else _DROPPED
        span_context = SpanContext(trace_id, self._random.getrandbits(64) or 1, False, flags)
        return PrebuiltSpan(self, name, span_context, parent, kind, _clean(attributes), list(links or ()),
                            start_time or 0)  # fmt: skip

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("the trace consumer builds spans after the fact; use start_span")

    def shutdown(self) -> None:
        for processor in self.processors:
            processor.shutdown()
