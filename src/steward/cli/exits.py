"""The exit codes of `steward`, in one place: scripts branch on them, `steward --help`
lists them (EPILOG), and `handled()` maps steward's errors onto them (code_for)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the command ran and the answer is "no": a check failed (audit verify,
    # policy test), a conflict (already decided), any other error
    USAGE = 2  # bad options or input: an unknown choice, invalid JSON, a spec that does not load
    NOT_FOUND = 3  # no such run, approval, key, agent or file
    DENIED = 4  # refused: `explain` decided deny, a key that is missing, invalid or not allowed
    STORE_UNAVAILABLE = 5  # the database cannot be reached, read or written now
    INTERRUPTED = 130  # Ctrl-C


EPILOG = (
    "Exit codes: 0 ok · 1 failed (a check did not pass, a conflict, other errors) · "
    "2 usage (bad option, input or spec) · 3 not found · "
    "4 denied (explain decided deny; a key missing, invalid or not allowed) · "
    "5 store unavailable · 130 interrupted."
)


def code_for(exc: BaseException) -> ExitCode:
    """The exit code of an error steward raised on purpose (the one mapping)."""
    # imported here: the error types are light, but this keeps `--help` free of them
    from steward.core.errors import (
        InvalidInput,
        NotFoundError,
        PermissionDenied,
        SpecError,
        SpecFileMissing,
        StoreUnavailable,
    )

    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, SpecFileMissing):
        return ExitCode.NOT_FOUND
    if isinstance(exc, SpecError):
        return ExitCode.USAGE
    if isinstance(exc, InvalidInput):
        return ExitCode.USAGE
    if isinstance(exc, NotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(exc, PermissionDenied):
        return ExitCode.DENIED
    if isinstance(exc, StoreUnavailable):
        return ExitCode.STORE_UNAVAILABLE
    return _BY_REASON.get(getattr(exc, "code", ""), ExitCode.FAILED)


# errors defined above core whose kind is known by their reason code
_BY_REASON = {"agent.disabled": ExitCode.DENIED}
