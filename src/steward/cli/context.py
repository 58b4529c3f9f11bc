"""Shared CLI plumbing: the database option, the console, and one-line errors.

Only light modules are imported here: `steward --help` and `--version` must not load the
store (SQLAlchemy, Alembic), the runtime or the model stack. Commands import those
where they use them."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from rich.console import Console

from steward.cli.exits import ExitCode, code_for
from steward.core.defaults import DEFAULT_DB_URL
from steward.core.errors import SpecError, StewardError

if TYPE_CHECKING:
    from steward.store.database import Database
    from steward.store.journal import Journal

# Piped output (CI logs, `| less`) gets a wide page instead of Rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else 160
# emoji=False: ":100:" in "agent.yaml:100:18" is a location, never an emoji code
console = Console(soft_wrap=True, width=_WIDTH, emoji=False)
errors = Console(stderr=True, soft_wrap=True, emoji=False)
T = TypeVar("T")

DbOption = typer.Option(
    None, "--db", envvar="STEWARD_DB", help=f"Database URL (default {DEFAULT_DB_URL})."
)


def db_url(value: str | None) -> str:
    return value or os.environ.get("STEWARD_DB") or DEFAULT_DB_URL


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    from rich.markup import escape  # a message's own brackets ("pkg[extra]") are text

    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


@contextmanager
def handled() -> Iterator[None]:
    """Turn steward's errors into one clear line each and the exit code of their kind
    (steward.cli.exits.code_for); no tracebacks."""
    try:
        yield
    except SpecError as exc:
        for problem in exc.problems:
            errors.print(f"[bold red]error:[/] {problem.render()}", highlight=False, soft_wrap=True)
        raise typer.Exit(int(code_for(exc))) from None
    except StewardError as exc:
        fail(str(exc), code_for(exc))
    except KeyboardInterrupt as exc:
        fail("interrupted", code_for(exc))


def time_range(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """`--since` / `--until` as Unix seconds (core/times.py parse_moment: RFC 3339, a
    date, `24h`…); a bad one fails naming its option (exit 2)."""
    import time

    from steward.core.times import parse_moment

    now = time.time()
    bounds: list[float | None] = []
    for name, given in (("since", since), ("until", until)):
        try:
            bounds.append(
                None if given is None else parse_moment(given, now=now, end=name == "until")
            )
        except ValueError as error:
            fail(f"--{name}: {error}")
    return bounds[0], bounds[1]


def open_db(url: str | None, *, create: bool = False) -> Database:
    from steward.store.database import Database

    return Database.open(db_url(url), create=create)


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    import asyncio

    async def main() -> T:
        return await factory()

    return asyncio.run(main())


@contextmanager
def journal_for(db: Database) -> Iterator[Journal]:
    """A journal with the configured telemetry consumers (see steward.telemetry.setup)."""
    from steward.store.journal import Journal
    from steward.telemetry.setup import install

    journal = Journal(db)
    try:
        telemetry = install(journal)
    except ValueError as exc:
        journal.close()
        fail(f"telemetry configuration: {exc}")
    try:
        yield journal
    finally:
        journal.close()  # the writer delivers its last batches to the consumers
        if telemetry is not None:
            telemetry.close()
            for problem in telemetry.problems:
                errors.print(f"[yellow]warning:[/] {problem}", highlight=False)


def is_tty() -> bool:
    return sys.stdout.isatty()
