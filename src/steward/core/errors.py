"""The error hierarchy. Every error carries a stable reason code people and policies can match."""

from __future__ import annotations


class StewardError(Exception):
    """Base of every error steward raises on purpose."""

    code: str = "steward.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class SpecError(StewardError):
    """A spec file that does not load. Carries every problem, each with its location."""

    code = "spec.invalid"

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))


class SpecFileMissing(SpecError):
    """The spec file does not exist (a SpecError, located at the path)."""

    code = "spec.missing"


class SpecProblem:
    """One problem in a spec file: where it is and what was expected."""

    __slots__ = ("column", "field", "file", "line", "message")

    def __init__(self, file: str, line: int, column: int, field: str, message: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"

    def __repr__(self) -> str:
        return f"SpecProblem({self.render()!r})"


class InvalidInput(StewardError):
    """Input that cannot be taken as given (a bad option, field or combination)."""

    code = "input.invalid"


class UnknownToolError(StewardError):
    code = "tool.unknown"


class ToolExecutionError(StewardError):
    """A tool raised or timed out. `retryable` says whether a retry may help;
    `outcome_unknown` that it may have acted all the same."""

    code = "tool.failed"

    def __init__(
        self,
        message: str,
        *,
        code: str = "tool.failed",
        retryable: bool = True,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
        # the tool was reached and may have acted (e.g. its server died mid-call): a write
        # is then recorded outcome unknown, never failed
        self.outcome_unknown = outcome_unknown


class PermissionDenied(StewardError):
    """The caller may not do this (beyond their role: e.g. deciding their own request)."""

    code = "auth.forbidden"


class StoreError(StewardError):
    code = "store.error"


class NotFoundError(StoreError):
    code = "store.not_found"


class ConflictError(StoreError):
    code = "store.conflict"


class StoreUnavailable(StoreError):
    """The store cannot take a write (or answer) now: locked, unreachable, its file gone,
    or the journal stopped. A server-side fault, never the caller's; nothing it touched
    was acknowledged. `retry_after` hints (in seconds) when asking again may succeed."""

    code = "store.unavailable"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelError(StewardError):
    code = "model.error"


class ProviderError(ModelError):
    """A model provider failed. Codes: model.rate_limited, model.unavailable,
    model.timeout, model.bad_response, model.truncated, model.auth, model.bad_request.
    `retryable` says whether another attempt (or another provider) may succeed;
    `retry_after` is the provider's own advice in seconds, when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        provider: str,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.provider = provider
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
