"""Tools of someone else's agent, governed by steward: a function (or none, for
decide-only) with the JSON Schema of its arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NoReturn

from steward.core.errors import ToolExecutionError
from steward.security.egress import schema_destinations
from steward.tools.base import DataClass, Effect, Tool, compile_validator, make_tool


def _decide_only(**_: Any) -> NoReturn:
    raise ToolExecutionError(
        "this tool was declared without a function (decide-only): its framework runs it",
        code="tool.unbound",
        retryable=False,
    )


def is_decide_only(tool: Tool) -> bool:
    return tool.function is _decide_only


def external_tool(
    name: str,
    function: Callable[..., Any] | None = None,
    *,
    parameters: dict[str, Any] | None = None,
    effect: Effect | str = Effect.WRITE,
    description: str = "",
    data_classes: tuple[DataClass | str, ...] = (),
    idempotent: bool = False,
    keyed: bool = False,
    timeout: float | None = None,
    cost_usd: float = 0.0,
    destinations: tuple[str, ...] = (),
) -> Tool:
    """A tool of your framework's, for `Steward.start_run(..., tools=[...])`.

    `function` is called with the arguments as keywords (a coroutine function is
    awaited); None declares the tool for decide-only use (`Run.decide`), where your
    framework runs it. `parameters` is the JSON Schema of the arguments; without it the
    schema is derived from `function`'s type hints. `effect` defaults to the safe
    "write": its intent is recorded before it runs and it is never retried or repeated
    unless `idempotent` or `keyed`. The spec's `tools:` must list `name`; a tool it does
    not list is never run (denied `tool.unlisted`)."""
    if parameters is None:
        if function is None:
            raise TypeError(f"tool {name}: a decide-only tool needs `parameters` (JSON Schema)")
        return make_tool(
            function, effect=effect, name=name, description=description or None,
            data_classes=data_classes, idempotent=idempotent, keyed=keyed, timeout=timeout,
            cost_usd=cost_usd, destinations=destinations,
        )  # fmt: skip
    if not isinstance(parameters, dict):
        raise TypeError(f"tool {name}: parameters must be a JSON Schema object (a dict)")
    schema = dict(parameters)
    properties = schema.get("properties", {})
    unknown = set(destinations) - set(properties if isinstance(properties, dict) else ())
    if unknown:
        raise TypeError(f"tool {name}: destinations {sorted(unknown)} are not parameters")
    run = function if function is not None else _decide_only
    return Tool(
        name=name,
        description=description or (inspect.getdoc(run) or "").split("\n\n")[0],
        parameters=schema,
        function=run,
        effect=Effect(effect),
        validator=compile_validator(schema),
        data_classes=frozenset(DataClass(d) for d in data_classes),
        idempotent=idempotent,
        keyed=keyed,
        timeout=timeout,
        cost_usd=cost_usd,
        destinations=frozenset(destinations) | schema_destinations(schema),
        is_async=inspect.iscoroutinefunction(run),
    )
