"""Versioned events (core/events.py): every stored version decodes to the current shape,
through upcasters, without rewriting the stored bytes or breaking the audit chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest
from sqlalchemy import select

from steward.core import events as ev
from steward.core.events import EventCodec, EventDecodeError, Upcaster
from steward.store import Database
from steward.store.chain import PendingEvent, append_in_transaction, verify_chain
from steward.store.schema import events as events_table

SCHEMAS = Path(__file__).parent / "data" / "event_schemas.json"


def _structs_in(tp: Any) -> list[type[msgspec.Struct]]:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return [tp]
    return [s for arg in get_args(tp) for s in _structs_in(arg)]


def shape(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """A struct's fields as stored: name → type and whether it is required; the structs
    it nests (a ModelResponse, a Decision) by name, with their fields likewise."""
    fields: dict[str, Any] = {}
    for f in msgspec.structs.fields(cls):
        fields[f.encode_name] = {"type": repr(f.type), "required": f.required}
        for nested in _structs_in(f.type):
            fields[f"{f.encode_name}:{nested.__name__}"] = shape(nested)
    return fields


def current_shapes() -> dict[str, dict[str, Any]]:
    return {ev.tag_of(cls): {str(cls.schema_version): shape(cls)} for cls in ev.EVENT_TYPES}


def _compare(where: str, before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    problems = []
    for name, field in before.items():
        if name not in now:
            problems.append(f"{where}: field {name!r} was removed or renamed")
        elif "type" not in field:  # a nested struct
            problems += _compare(f"{where}.{name}", field, now[name])
        elif now[name] != field:
            problems.append(f"{where}: field {name!r} changed ({field} -> {now[name]})")
    for name, field in now.items():
        if name not in before and field.get("required", False):
            problems.append(f"{where}: new field {name!r} has no default")
    return problems


def test_every_shape_change_has_a_new_version() -> None:
    """The shapes of every version are on record (tests/data/event_schemas.json). A field
    added with a default is compatible; anything else (a field removed, renamed, retyped,
    or added without a default) needs a new schema_version and an upcaster."""
    recorded: dict[str, dict[str, Any]] = json.loads(SCHEMAS.read_text())
    problems = []
    for tag, versions in current_shapes().items():
        ((version, now),) = versions.items()
        before = recorded.get(tag, {}).get(version)
        if before is None:
            problems.append(f"{tag} v{version} is not on record: add its shape to {SCHEMAS.name}")
            continue
        problems += _compare(f"{tag} v{version}", before, now)
    assert not problems, (
        "event shapes changed without a new schema_version (bump it and register an "
        "upcaster in core/events.py):\n" + "\n".join(problems)
    )


def test_the_codec_refuses_a_version_without_its_upcasters() -> None:
    class Gadget(ev.Event, tag="test.gadget", frozen=True):
        schema_version = 3
        name: str

    with pytest.raises(ValueError, match=r"test.gadget is at schema version 3 .* from version 2"):
        EventCodec(Gadget, {("test.gadget", 1): lambda raw: raw})


def test_current_versions_decode_on_the_fast_path() -> None:
    event = ev.ToolFailed("k", "t", "tool.error", "boom", 1)
    assert ev.decode_event(ev.encode_event(event)) == event
    assert b'"_v"' not in ev.encode_event(event)  # version 1 carries no marker


# -- a synthetic change: v1 had `amount` in cents and `to`; v2 has `amount_usd` and
#    `recipient`, and a field v1 did not have --------------------------------------------


class RefundV1(ev.Event, tag="test.refund", frozen=True):
    to: str
    amount: int  # cents


class RefundV2(ev.Event, tag="test.refund", frozen=True):
    schema_version = 2
    recipient: str
    amount_usd: float
    reason: str


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "recipient": raw["to"],
        "amount_usd": raw["amount"] / 100,
        "reason": "(not recorded before v2)",
    }


UPCASTERS: dict[tuple[str, int], Upcaster] = {("test.refund", 1): _v1_to_v2}


def test_an_upcaster_turns_v1_into_v2() -> None:
    old = EventCodec[RefundV1](RefundV1)
    new = EventCodec[RefundV2](RefundV2 | ev.RunStarted, UPCASTERS)
    stored = old.encode(RefundV1("ana", 1250))
    assert stored == b'{"amount":1250,"to":"ana","type":"test.refund"}'
    assert new.decode(stored) == RefundV2("ana", 12.5, "(not recorded before v2)")
    # v2 is written with its version; it decodes as itself, not through the upcaster
    written = new.encode(RefundV2("bo", 3.0, "late"))
    assert written.startswith(b'{"_v":2,"amount_usd":3.0,')
    assert new.decode(written) == RefundV2("bo", 3.0, "late")
    # other types of the union are untouched
    assert new.decode(ev.encode_event(ev.RunStarted("a", "1", "hi"))) == ev.RunStarted(
        "a", "1", "hi"
    )


def test_a_v1_event_that_would_decode_as_v2_still_goes_through_the_upcaster() -> None:
    """A change of meaning with compatible fields: cents became dollars in the same field.
    The typed decode succeeds; the stored version says it is v1, so it is upcast."""

    class PriceV1(ev.Event, tag="test.price", frozen=True):
        amount: float  # cents

    class PriceV2(ev.Event, tag="test.price", frozen=True):
        schema_version = 2
        amount: float  # dollars

    codec = EventCodec[PriceV2](
        PriceV2, {("test.price", 1): lambda raw: {**raw, "amount": raw["amount"] / 100}}
    )
    assert codec.decode(EventCodec[PriceV1](PriceV1).encode(PriceV1(250.0))) == PriceV2(2.5)
    assert codec.decode(codec.encode(PriceV2(2.5))) == PriceV2(2.5)


def test_bad_bytes_are_a_clear_error() -> None:
    codec = EventCodec[RefundV2](RefundV2, UPCASTERS)
    with pytest.raises(EventDecodeError, match="unknown schema version 7"):
        codec.decode(b'{"_v":7,"type":"test.refund","recipient":"a"}')
    with pytest.raises(EventDecodeError, match=r"test\.refund v2"):
        codec.decode(b'{"_v":2,"type":"test.refund","recipient":"a"}')
    with pytest.raises(EventDecodeError, match="upcast from v1 to v2"):
        codec.decode(b'{"type":"test.refund","to":"a"}')  # the upcaster cannot read it
    with pytest.raises(msgspec.ValidationError):
        codec.decode(b'{"type":"test.nothing"}')


def test_v1_rows_stay_byte_for_byte_on_the_chain_and_decode_as_v2(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'steward.db'}")
    try:
        old = EventCodec[RefundV1](RefundV1)
        stored = [old.encode(RefundV1(f"p{i}", 100 * i)) for i in range(3)]
        with db.writer.begin() as connection:
            append_in_transaction(
                connection,
                [
                    PendingEvent("run_x", "test.refund", 1000.0 + i, data, RefundV1("", 0))
                    for i, data in enumerate(stored)
                ],
            )
        new = EventCodec[RefundV2](RefundV2, UPCASTERS)
        with db.reader.connect() as connection:
            rows = connection.execute(select(events_table).order_by(events_table.c.id)).all()
            assert [r.data.encode() for r in rows] == stored  # never rewritten
            decoded = [new.decode(r.data) for r in rows]
            assert decoded[2] == RefundV2("p2", 2.0, "(not recorded before v2)")
            report = verify_chain(connection)
        assert report.ok and report.checked == 3
    finally:
        db.close()


if __name__ == "__main__":  # record the shapes of new types or versions (keeps old ones)
    record = json.loads(SCHEMAS.read_text()) if SCHEMAS.exists() else {}
    for tag, versions in current_shapes().items():
        for version, fields in versions.items():
            record.setdefault(tag, {}).setdefault(version, fields)
    SCHEMAS.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
