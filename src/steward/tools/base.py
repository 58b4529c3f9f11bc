"""A tool is a typed function plus the metadata the gate needs to govern it.

The JSON Schema of the arguments is derived from the type hints through a pydantic model
built from the signature (bounds come from `Annotated[float, Field(gt=0)]`); the gate
validates against that schema with a compiled validator (fastjsonschema), which costs
about a microsecond per call.

Safe defaults: a tool must say its `effect` (nothing is a read by omission), a Tool cannot
be built without a validator, validation never writes schema defaults into the caller's
arguments (the function's own defaults apply when it is called), and arguments holding
NaN or ±Infinity, or nested deeper than MAX_JSON_DEPTH, never validate.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import fastjsonschema
from pydantic import BaseModel, ConfigDict, create_model

from steward.core.messages import ToolSpec
from steward.core.values import json_problem
from steward.security.egress import schema_destinations


class Effect(StrEnum):
    READ = "read"
    WRITE = "write"


class DataClass(StrEnum):
    PII = "pii"
    FINANCIAL = "financial"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a running tool may know about its call. A keyed tool passes
    `idempotency_key` to its downstream system so a retried call is not done twice."""

    run_id: str
    call_id: str
    idempotency_key: str
    attempt: int = 1


ArgValidator = Callable[[dict[str, Any]], Any]


def compile_validator(schema: dict[str, Any]) -> ArgValidator:
    """A validator of arguments against `schema` that raises JsonSchemaException and never
    changes what it checks (fastjsonschema fills in defaults unless told not to)."""
    validate: ArgValidator = fastjsonschema.compile(schema, use_default=False)
    return validate


def _effect(value: Effect | str, name: str) -> Effect:
    try:
        return Effect(value)
    except ValueError:
        raise ValueError(f"tool {name}: effect must be 'read' or 'write', not {value!r}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    effect: Effect  # required: a write that forgot to say so must not pass for a read
    validator: ArgValidator = field(repr=False)  # required: see compile_validator()
    data_classes: frozenset[DataClass] = frozenset()
    idempotent: bool = False
    keyed: bool = False
    timeout: float | None = None
    # a write cut off at its timeout cannot take effect afterwards (see `tool()`)
    abandon_on_timeout: bool = False
    limit_arg: str | None = None
    cost_usd: float = 0.0
    context_param: str | None = None
    is_async: bool = False  # set by make_tool(): checked once, not per call
    # answered by a person through an approval, never executed (tools/builtin.py)
    asks_human: bool = False
    # arguments that name where data goes (URLs, hosts, addresses): security/egress.py
    destinations: frozenset[str] = frozenset()
    # returns retrieved documents (search, RAG): its findings follow the spec's
    # `injection.retrieved_documents` rather than `injection.tool_results`
    retrieves: bool = False
    # why the tool may not be called now, as (code, message), or None when it may: an MCP
    # tool whose definition changed since it was pinned (steward/mcp/). A held tool is
    # hidden from the model, and the policy stage denies its calls with that code.
    hold: Callable[[], tuple[str, str] | None] | None = field(default=None, repr=False)
    _args_model: type[BaseModel] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not callable(self.validator):
            raise TypeError(
                f"tool {self.name}: a validator is required, e.g. compile_validator(parameters)"
            )
        object.__setattr__(self, "effect", _effect(self.effect, self.name))

    @property
    def retry_safe(self) -> bool:
        """Retrying is safe for reads, idempotent tools and tools that honour the key."""
        return self.effect is Effect.READ or self.idempotent or self.keyed

    def validate_arguments(self, arguments: dict[str, Any]) -> str | None:
        """None if the arguments fit the schema, else a one-line reason. Never changes them."""
        problem = json_problem(arguments)
        if problem is not None:
            return problem
        try:
            self.validator(arguments)
        except fastjsonschema.JsonSchemaException as exc:
            return str(getattr(exc, "message", exc))
        return None

    def held(self) -> tuple[str, str] | None:
        """(code, message) when the tool may not be called now, else None."""
        return self.hold() if self.hold is not None else None

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    def bind(self, arguments: dict[str, Any], context: ToolContext | None) -> dict[str, Any]:
        """Keyword arguments for the function: pydantic-typed parameters are built here."""
        kwargs = dict(arguments)
        if self._args_model is not None:
            parsed = self._args_model.model_validate(arguments)
            kwargs = {name: getattr(parsed, name) for name in type(parsed).model_fields}
        if self.context_param is not None:
            if context is None:
                raise TypeError(f"tool {self.name} needs a ToolContext")
            kwargs[self.context_param] = context
        return kwargs


def _build_args_model(
    function: Callable[..., Any],
) -> tuple[type[BaseModel], str | None, bool]:
    """A pydantic model of the parameters; the ToolContext parameter is left out."""
    hints = get_type_hints(function, include_extras=True)  # keep Field(gt=0) bounds
    fields: dict[str, Any] = {}
    context_param: str | None = None
    needs_model = False
    for name, param in inspect.signature(function).parameters.items():
        annotation = hints.get(name, Any)
        bare = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
        if bare is ToolContext:
            context_param = name
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {function.__name__}: *args/**kwargs cannot be described")
        if isinstance(bare, type) and issubclass(bare, BaseModel):
            needs_model = True
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    model: type[BaseModel] = create_model(
        f"{function.__name__}_args",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )
    return model, context_param, needs_model


def make_tool(
    function: Callable[..., Any],
    *,
    effect: Effect | str,
    name: str | None = None,
    description: str | None = None,
    data_classes: tuple[DataClass | str, ...] = (),
    idempotent: bool = False,
    keyed: bool = False,
    timeout: float | None = None,
    abandon_on_timeout: bool = False,
    limit_arg: str | None = None,
    cost_usd: float = 0.0,
    destinations: tuple[str, ...] = (),
    retrieves: bool = False,
) -> Tool:
    model, context_param, needs_model = _build_args_model(function)
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema["additionalProperties"] = False
    unknown = set(destinations) - set(schema.get("properties", {}))
    if unknown:
        raise TypeError(
            f"tool {function.__name__}: destinations {sorted(unknown)} are not parameters"
        )
    doc = inspect.getdoc(function) or ""
    return Tool(
        name=name or function.__name__,
        description=description if description is not None else doc.split("\n\n")[0],
        parameters=schema,
        function=function,
        effect=_effect(effect, name or function.__name__),
        data_classes=frozenset(DataClass(d) for d in data_classes),
        idempotent=idempotent,
        keyed=keyed,
        timeout=timeout,
        abandon_on_timeout=abandon_on_timeout,
        limit_arg=limit_arg,
        cost_usd=cost_usd,
        destinations=frozenset(destinations) | schema_destinations(schema),
        retrieves=retrieves,
        context_param=context_param,
        is_async=inspect.iscoroutinefunction(function),
        validator=compile_validator(schema),
        _args_model=model if needs_model else None,
    )


def tool(
    function: None = None,
    /,
    *,
    effect: Effect | str,
    name: str | None = None,
    description: str | None = None,
    data_classes: tuple[DataClass | str, ...] = (),
    idempotent: bool = False,
    keyed: bool = False,
    timeout: float | None = None,
    abandon_on_timeout: bool = False,
    limit_arg: str | None = None,
    cost_usd: float = 0.0,
    destinations: tuple[str, ...] = (),
    retrieves: bool = False,
) -> Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function into a governed tool: `@tool(effect="read")`.

    effect (required, so a bare `@tool` fails with "missing ... 'effect'"): `read` or
    `write`; data_classes: `pii`, `financial`, `internal`; idempotent: safe to repeat;
    keyed: honours ToolContext.idempotency_key downstream; timeout: seconds (the spec's
    tool_timeout_seconds applies otherwise);
    abandon_on_timeout: a write cut off at its timeout is recorded `failed`, not outcome
      unknown. Declare it only when a late call cannot take effect: its downstream refuses
      work past a deadline the tool passes on, or it is a coroutine whose cancellation
      undoes what it began;
    limit_arg: the argument bounded by data_access.max_records_per_query;
    destinations: arguments naming where data goes, checked against the spec's `egress`
    (parameters with a schema format such as uri or email count without being named);
    retrieves: returns retrieved documents (search, RAG), whose injection findings follow
    the spec's `injection.retrieved_documents`.
    """
    del function  # only there so that a bare @tool names the missing `effect`

    def decorate(fn: Callable[..., Any]) -> Tool:
        return make_tool(
            fn, effect=effect, name=name, description=description, data_classes=data_classes,
            idempotent=idempotent, keyed=keyed, timeout=timeout,
            abandon_on_timeout=abandon_on_timeout, limit_arg=limit_arg, cost_usd=cost_usd,
            destinations=destinations, retrieves=retrieves,
        )  # fmt: skip

    return decorate
