"""Safe defaults of tool definitions: every tool says what it does to the world, validates
its arguments, and refuses numbers that are not numbers."""

from __future__ import annotations

import math
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from steward.tools import Effect, Tool, compile_validator, tool


def test_a_tool_without_an_effect_refuses_to_build() -> None:
    with pytest.raises(TypeError, match="effect"):

        @tool
        def send_email(to: str, body: str) -> str:
            return "sent"

    with pytest.raises(TypeError, match="effect"):

        @tool(keyed=True)
        def send_email_keyed(to: str, body: str) -> str:
            return "sent"


def test_an_unknown_effect_refuses_to_build() -> None:
    with pytest.raises(ValueError, match="effect"):

        @tool(effect="maybe")
        def odd() -> None:
            return None


def test_a_declared_effect_is_kept() -> None:
    @tool(effect="write")
    def send_email(to: str) -> str:
        return "sent"

    @tool(effect=Effect.READ)
    def lookup(order_id: str) -> str:
        return order_id

    assert send_email.effect is Effect.WRITE and not send_email.retry_safe
    assert lookup.effect is Effect.READ and lookup.retry_safe


def test_a_tool_built_by_hand_needs_an_effect_and_a_validator() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    with pytest.raises(TypeError):
        Tool(name="t", description="", parameters=schema, function=lambda: None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Tool(  # type: ignore[call-arg]
            name="t", description="", parameters=schema, function=lambda: None, effect=Effect.READ
        )
    with pytest.raises(TypeError, match="validator"):
        Tool(
            name="t",
            description="",
            parameters=schema,
            function=lambda: None,
            effect=Effect.READ,
            validator=None,  # type: ignore[arg-type]
        )
    built = Tool(
        name="t",
        description="",
        parameters=schema,
        function=lambda: None,
        effect=Effect.READ,
        validator=compile_validator(schema),
    )
    assert built.validate_arguments({}) is None
    assert built.validate_arguments({"x": 1}) is not None
    by_name = Tool(
        name="t",
        description="",
        parameters=schema,
        function=lambda: None,
        effect="write",  # type: ignore[arg-type]
        validator=compile_validator(schema),
    )
    assert (
        by_name.effect is Effect.WRITE
    )  # the gate compares with `is`: a str would pass for a read


def test_validation_never_writes_defaults_into_the_arguments() -> None:
    @tool(effect="read")
    def search(query: str, limit: int = 3) -> list[str]:
        return [query] * limit

    arguments: dict[str, Any] = {"query": "q"}
    assert search.validate_arguments(arguments) is None
    assert arguments == {"query": "q"}
    assert search.bind(arguments, None) == {"query": "q"}  # the function's default applies


class Address(BaseModel):
    street: str
    country: str = "NL"


def test_nested_model_defaults_reach_the_tool_not_the_arguments() -> None:
    @tool(effect="write")
    def ship(to: Address) -> str:
        return to.country

    arguments: dict[str, Any] = {"to": {"street": "Main 1"}}
    assert ship.validate_arguments(arguments) is None
    assert arguments == {"to": {"street": "Main 1"}}
    assert ship.bind(arguments, None)["to"].country == "NL"
    assert arguments == {"to": {"street": "Main 1"}}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_numbers_that_are_not_finite_are_refused(bad: float) -> None:
    @tool(effect="write")
    def pay(amount: float, items: list[float], meta: dict[str, Any]) -> None:
        return None

    assert pay.validate_arguments({"amount": 1.0, "items": [1.0], "meta": {}}) is None
    problem = pay.validate_arguments({"amount": bad, "items": [], "meta": {}})
    assert problem is not None and "amount" in problem and "finite" in problem
    problem = pay.validate_arguments({"amount": 1.0, "items": [2.0, bad], "meta": {}})
    assert problem is not None and "items[1]" in problem
    problem = pay.validate_arguments({"amount": 1.0, "items": [], "meta": {"x": {"y": bad}}})
    assert problem is not None and "meta.x.y" in problem


def test_a_schema_declares_bounds() -> None:
    @tool(effect="write")
    def refund(amount_usd: Annotated[float, Field(gt=0, le=10_000)]) -> None:
        return None

    assert refund.parameters["properties"]["amount_usd"]["exclusiveMinimum"] == 0
    assert refund.validate_arguments({"amount_usd": 12.5}) is None
    for bad in (0, -1, -0.01, 10_001, -math.inf, math.nan, math.inf):
        assert refund.validate_arguments({"amount_usd": bad}) is not None, bad


def test_the_demo_money_tools_take_only_positive_amounts(tmp_path: Any) -> None:
    from steward.demo.tools import support_tools

    tools = {t.name: t for t in support_tools(tmp_path / "systems.db")}
    refund = tools["issue_refund"]
    good = {"order_id": "10001", "amount_usd": 20.0, "reason": "r"}
    assert refund.validate_arguments(good) is None
    for bad in (0.0, -5.0, -math.inf, math.nan, math.inf):
        assert refund.validate_arguments({**good, "amount_usd": bad}) is not None, bad
    assert refund.parameters["properties"]["amount_usd"]["exclusiveMinimum"] == 0


def test_every_demo_tool_declares_its_effect(tmp_path: Any) -> None:
    from steward.demo.tools import support_tools

    tools = {t.name: t for t in support_tools(tmp_path / "systems.db")}
    writes = {n for n, t in tools.items() if t.effect is Effect.WRITE}
    assert writes == {"issue_refund", "reset_password", "send_email", "delete_customer_data"}
