"""Rendering shared by the CLI commands: one way to print what a command found, as a
Rich table or text for people, or as JSON (`--json`) for scripts.

Each command builds its data once, as plain JSON values (the documented shape; times
are RFC 3339 strings, see steward.core.times), and hands it here: `listing` for a list
of records (a table, or a JSON array), `report` for one object (the command's own text,
or a JSON object). Tables are drawn from the same records the JSON prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import typer

from steward.core.times import rfc3339

JsonOption = typer.Option(
    False, "--json", help="Print JSON instead of a table (shapes: README, section CLI)."
)

STATUS_STYLE = {
    "succeeded": "green",
    "waiting": "yellow",
    "running": "blue",
    "queued": "blue",
    "escalated": "magenta",
    "failed": "red",
    "cancelled": "dim",
    "pending": "yellow",
    "approved": "green",
    "rejected": "red",
    "expired": "dim",
    "allow": "green",
    "review": "yellow",
    "deny": "red",
    "transform": "cyan",
}

Record = dict[str, Any]


def emit_json(data: Any) -> None:
    """The one JSON writer: indented, UTF-8, keys in the order the command built them."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@dataclass(frozen=True, slots=True)
class Column:
    """A table column read from a record's `key`; `show` formats the value for people."""

    key: str
    title: str = ""
    show: Callable[[Any], str] | None = None
    wrap: bool = False
    right: bool = False

    def cell(self, record: Record) -> str:
        value = record.get(self.key)
        if self.show is not None:
            return self.show(value)
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            return compact(value, 60)
        return str(value)


def listing(
    records: Sequence[Record], columns: Sequence[Column], *, title: str, as_json: bool
) -> None:
    """A list of records: a JSON array with --json, else a table of `columns`."""
    if as_json:
        emit_json(list(records))
        return
    from rich.table import Table

    from steward.cli.context import console

    table = Table(title=title)
    for column in columns:
        table.add_column(
            column.title or column.key,
            no_wrap=not column.wrap,
            overflow="fold" if column.wrap else "ellipsis",
            justify="right" if column.right else "left",
        )
    for record in records:
        table.add_row(*(column.cell(record) for column in columns))
    console.print(table)


def report(data: Record, as_json: bool, human: Callable[[Record], None]) -> None:
    """One object: a JSON object with --json, else the command's own text for people."""
    if as_json:
        emit_json(data)
    else:
        human(data)


def status(value: str) -> str:
    style = STATUS_STYLE.get(value, "white")
    return f"[{style}]{value}[/]"


def when(ts: float | str | None) -> str:
    """A time for a table: RFC 3339 to the second, in UTC (`Z`)."""
    if ts is None or ts == "":
        return "-"
    text = rfc3339(ts) if isinstance(ts, float | int) else ts
    return text[:19] + "Z" if len(text) > 19 else text


def short(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def compact(value: Any, width: int = 80) -> str:
    return short(json.dumps(value, sort_keys=True, default=str), width)


def shorten(width: int) -> Callable[[Any], str]:
    return lambda value: short(str(value or ""), width)
