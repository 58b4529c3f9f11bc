"""Typed models of the agent spec (the governance template users know, seed 003).

Unknown keys are errors everywhere (`extra="forbid"`). Cross-field checks live in
validators so every problem comes back with a field path the loader maps to a line.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import cel
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from steward.security.egress import check_pattern
from steward.security.scanners import FindingAction, TextSource
from steward.tools.builtin import ASK_HUMAN

NAME_RE = r"^[a-z][a-z0-9_\-]{0,63}$"
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
PLACEHOLDER = re.compile(r"\{([a-zA-Z_][\w.]*)\}")  # `{name}` / `{results.tool.field}`


class Tier(StrEnum):
    AUTONOMOUS = "autonomous"
    REQUIRES_HUMAN_REVIEW = "requires_human_review"
    FORBIDDEN = "forbidden"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MODEL_NAME = r"^(rules|scripted|external|(openai|anthropic):[\w.\-/:]+)$"
EXTERNAL = "external"  # the agent's reasoning lives outside steward (the `steward` facade)


def _name_shorthand(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class ProviderRef(_Strict):
    """One model at one provider: `openai:gpt-4o-mini`, `anthropic:claude-sonnet-4-5`,
    or steward's own `rules` / `scripted`, or `external` (the agent's own program calls its
    model and proposes calls through the `steward` facade). base_url points an OpenAI-compatible client at
    vLLM, Ollama, llama.cpp, LM Studio or Azure; the key is read from api_key_env."""

    name: str = Field(pattern=MODEL_NAME)
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    timeout_seconds: float = Field(default=60.0, gt=0, allow_inf_nan=False)

    @property
    def provider(self) -> str:
        return self.name.split(":", 1)[0] if ":" in self.name else self.name


class ModelRetries(_Strict):
    """Per model, before its fallback: transient errors (429, 5xx, 529, timeouts, resets)
    retried with exponential backoff and full jitter, Retry-After honoured up to
    max_retry_after_seconds, never past the run's deadline. `attempts` counts the first."""

    attempts: int = Field(default=3, ge=1, le=10, strict=True)
    backoff_seconds: float = Field(default=0.5, ge=0, le=60, allow_inf_nan=False)
    max_backoff_seconds: float = Field(default=8.0, ge=0, le=300, allow_inf_nan=False)
    max_retry_after_seconds: float = Field(default=30.0, ge=0, le=3600, allow_inf_nan=False)


class ModelRef(ProviderRef):
    """The model, and the fallbacks tried in order when it is unavailable."""

    fallbacks: tuple[Annotated[ProviderRef, BeforeValidator(_name_shorthand)], ...] = ()
    retries: ModelRetries = ModelRetries()


class SemanticConfig(_Strict):
    """Opt-in semantic cache for a run's first turn: a user request that means the same as
    an earlier one (cosine similarity ≥ threshold, and the same numbers) gets that one's
    final answer. Shares ttl_seconds and max_entries with the exact cache. The default
    threshold is the lowest with ≤ 1% false hits in benchmarks/bench_semantic_cache.py.
    embedder: "minilm" (local, offline) or "openai:<model>" (base_url, api_key_env)."""

    enabled: bool = False
    threshold: float = Field(default=0.98, gt=0, le=1, allow_inf_nan=False)
    embedder: str = Field(default="minilm", pattern=r"^(minilm|openai:[\w.\-/:]+)$")
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")

    @field_validator("base_url", "api_key_env")
    @classmethod
    def _openai_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not str(info.data.get("embedder", "")).startswith("openai:"):
            raise ValueError(f"{info.field_name} applies only to an openai:<model> embedder")
        return value


class CacheConfig(_Strict):
    """Exact-match response cache, scoped by agent version, model and request, and the
    semantic cache (off unless `semantic.enabled`). Neither is used for a turn that follows
    a side effect in the same run."""

    enabled: bool = False
    ttl_seconds: float = Field(default=300.0, gt=0, allow_inf_nan=False)
    max_entries: int = Field(default=10_000, ge=1, strict=True)
    semantic: SemanticConfig = SemanticConfig()


class DecisionAuthority(_Strict):
    autonomous: tuple[str, ...] = ()
    requires_human_review: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()

    def tier_of(self, tool: str) -> Tier | None:
        for tier in Tier:
            if tool in getattr(self, tier.value):
                return tier
        return None


class Condition(_Strict):
    """An argument-level rule in CEL. Variables: `args`, `tool`, `agent`, `sources`."""

    id: str = Field(pattern=NAME_RE)
    tool: str
    when: str = Field(min_length=1)
    then: Tier
    reason: str = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            cel.compile(value)
        except Exception as exc:  # the CEL binding raises ValueError with a caret diagram
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"CEL condition does not compile: {first}") from None
        return value


class DataAccess(_Strict):
    allow_pii: bool = False
    allow_financial: bool = False
    allow_internal_docs: bool = True
    max_records_per_query: int = Field(default=50, ge=1, strict=True)


class RateLimit(_Strict):
    count: int
    period_seconds: float

    def __str__(self) -> str:
        return f"{self.count} per {self.period_seconds:g}s"


def parse_rate(value: Any) -> RateLimit:
    if isinstance(value, RateLimit):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a rate like '5/hour' (count/second|minute|hour|day)")
    match = _RATE_RE.match(value)
    if match is None:
        raise ValueError(f"expected a rate like '5/hour', got {value!r}")
    count = int(match.group(1))
    if count < 1:
        raise ValueError("a rate limit needs a count of at least 1")
    return RateLimit(count=count, period_seconds=_PERIODS[match.group(2)])


class CostControls(_Strict):
    max_cost_per_run_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_daily_spend_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    # a daily cap per value of a run tag, e.g. {tenant: 100}: each tenant's spend today,
    # across its runs, processes and every agent that declares a cap on that tag
    max_daily_spend_per_tag_usd: dict[
        Annotated[str, Field(pattern=r"^[\w.:-]{1,64}$")],
        Annotated[float, Field(ge=0, allow_inf_nan=False)],
    ] = Field(default_factory=dict)
    alert_on_threshold: float = Field(default=0.8, gt=0, le=1, allow_inf_nan=False)
    alert_webhook: str | None = Field(default=None, pattern=r"^https?://")


class Limits(_Strict):
    max_steps: int = Field(default=10, ge=1, le=1000, strict=True)
    max_run_seconds: float = Field(default=120.0, gt=0, allow_inf_nan=False)
    tool_timeout_seconds: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    max_retries: int = Field(default=2, ge=0, le=10, strict=True)
    max_concurrent_runs: int = Field(default=10, ge=1, strict=True)
    # threads of this agent's own that run its synchronous tools (gate/workers.py)
    tool_workers: int = Field(default=8, ge=1, le=256, strict=True)
    max_output_tokens: int = Field(default=4096, ge=1, strict=True)
    # a request over the model's context window: trim the oldest tool results, or refuse
    context_strategy: str = Field(
        default="trim_tool_results", pattern="^(trim_tool_results|refuse)$"
    )
    # an answer cut off by the output limit: escalate, or ask the model to go on (max_steps)
    on_truncation: str = Field(default="escalate", pattern="^(escalate|continue)$")


class Escalation(_Strict):
    confidence_below: float = Field(default=0.0, ge=0, le=1)
    to: str = "support-team"


class Egress(_Strict):
    """Where the agent's tools may send data: each destination argument of a call
    (security/egress.py) must match a pattern, or the call is denied `egress.not_allowed`
    whatever its tier. Without an `egress:` section destinations are not checked."""

    allow: tuple[str, ...] = ()

    @field_validator("allow")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_pattern(p) for p in value)


class InjectionPolicy(_Strict):
    """What an injection finding does, per source of the text (security/scanners.py
    FindingAction): quarantine the string, send the calls that follow to review, deny
    them, or only record it. Without this section every source quarantines, and the
    run's own input is not scanned (`user_input` may record, review or deny)."""

    tool_results: FindingAction = FindingAction.QUARANTINE
    retrieved_documents: FindingAction = FindingAction.QUARANTINE
    mcp_tool_descriptions: FindingAction = FindingAction.QUARANTINE
    user_input: FindingAction | None = None

    @field_validator("user_input")
    @classmethod
    def _not_quarantined(cls, value: FindingAction | None) -> FindingAction | None:
        if value is FindingAction.QUARANTINE:
            raise ValueError(
                "the run's own input cannot be quarantined: use record, review or deny"
            )
        return value

    def action_for(self, source: TextSource) -> FindingAction | None:
        """The action for a finding in text from `source`; None: that source is not scanned."""
        action: FindingAction | None = getattr(self, source.value)
        return action


class McpToolConfig(_Strict):
    """What steward may assume of one MCP tool: its `effect`, whatever its annotations say."""

    effect: str = Field(pattern="^(read|write)$")
    idempotent: bool = False


class McpServer(_Strict):
    """One MCP server whose tools become this agent's tools, named `server.tool`.

    stdio: `command` (+ `args`, `env`) is started as a subprocess when a tool of it is
    first needed. Streamable HTTP: `url`, with `auth_header` taken from the environment
    variable `auth_env` (the header value, e.g. `Bearer ...`). The server's annotations
    (readOnlyHint, idempotentHint) are hints steward ignores unless `trust_annotations`;
    without them or an entry under `tools`, every tool is a write that is never retried."""

    command: str | None = Field(default=None, min_length=1)
    args: tuple[str, ...] = ()
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = {}
    # variables of steward's own environment passed on (a secret stays out of the spec)
    env_from: tuple[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], ...] = ()
    url: str | None = Field(default=None, pattern=r"^https?://", validate_default=True)
    auth_header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9-]+$")
    auth_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    trust_annotations: bool = False
    tools: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-./]{1,128}$")], McpToolConfig] = {}
    # auto: `server/discover` (2026-07-28), falling back to the `initialize` handshake of
    # the 2025 revisions; legacy: the handshake only
    protocol: str = Field(default="auto", pattern="^(auto|legacy)$")
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600, allow_inf_nan=False)
    # per call; limits.tool_timeout_seconds applies when not set
    call_timeout_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("url")
    @classmethod
    def _one_transport(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (value is None) == (info.data.get("command") is None):
            raise ValueError("give either `command` (stdio) or `url` (streamable HTTP)")
        return value

    @field_validator("env_from")
    @classmethod
    def _stdio_only(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if value and info.data.get("command") is None:
            raise ValueError("env_from applies only to a server started by `command`")
        return value

    @field_validator("auth_env")
    @classmethod
    def _http_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("url") is None:
            raise ValueError("auth_env applies only to a server reached by `url`")
        return value


class Approvals(_Strict):
    expires_after_seconds: float = Field(default=86400.0, gt=0, allow_inf_nan=False)


MONITOR_METRICS = ("accuracy", "confidence", "escalation_rate", "denial_rate", "latency", "cost")
MonitorMetric = Literal[
    "accuracy", "confidence", "escalation_rate", "denial_rate", "latency", "cost"
]


class MetricMonitor(_Strict):
    """One monitored metric (monitor/series.py): a CUSUM or EWMA chart calibrated so
    that false alarms come `arl0` runs apart on average, tuned to detect `shift` (in the
    metric's units), `shift_sigma` (sigma of one run) or `shift_percent` (of the baseline);
    at most one of the three (default: 1 sigma). Unset fields take the section's values."""

    chart: Literal["cusum", "ewma"] = "cusum"
    shift: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    shift_sigma: float | None = Field(default=None, gt=0, le=10, allow_inf_nan=False)
    shift_percent: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False)
    arl0: float | None = Field(default=None, ge=10, le=1e7, allow_inf_nan=False)
    warmup: int | None = Field(default=None, ge=10, le=100_000, strict=True)
    batch: int | None = Field(default=None, ge=1, le=500, strict=True)


class Monitors(_Strict):
    """Drift monitors of this agent, per version: `metrics` names what is watched."""

    arl0: float = Field(default=1000.0, ge=10, le=1e7, allow_inf_nan=False)
    warmup: int = Field(default=200, ge=10, le=100_000, strict=True)
    webhook: str | None = Field(default=None, pattern=r"^https?://")
    metrics: dict[MonitorMetric, MetricMonitor] = Field(min_length=1)

    @field_validator("metrics", mode="before")
    @classmethod
    def _empty_entries(cls, value: Any) -> Any:
        # `latency:` with nothing after it means "with the defaults"
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value


# --- configuration of the embedded `rules` model --------------------------------------


class Extractor(_Strict):
    pattern: str
    type: str = Field(default="string", pattern="^(string|number|integer)$")

    @field_validator("pattern")
    @classmethod
    def _regex_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"regular expression does not compile: {exc}") from None
        return value


class PlannedCall(_Strict):
    tool: str
    args: dict[str, Any] = {}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


class Intent(_Strict):
    name: str = Field(pattern=NAME_RE)
    match: tuple[str, ...] = Field(min_length=1)
    unless: tuple[str, ...] = ()
    extract: dict[str, Annotated[Extractor, Field()]] = {}
    require: tuple[str, ...] = ()
    plan: tuple[tuple[PlannedCall, ...], ...] = ()
    answer: str
    confidence: float = Field(default=0.9, ge=0, le=1)
    on_denied: str | None = None
    on_denied_confidence: float = Field(default=0.5, ge=0, le=1)
    on_missing: str | None = None

    @field_validator("extract", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"pattern": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("match", "unless")
    @classmethod
    def _patterns_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} does not compile: {exc}") from None
        return value

    @field_validator("require")
    @classmethod
    def _required_are_extracted(
        cls, value: tuple[str, ...], info: ValidationInfo
    ) -> tuple[str, ...]:
        extracted = info.data.get("extract", {})
        missing = [name for name in value if name not in extracted]
        if missing:
            raise ValueError(f"require names fields that are not extracted: {missing}")
        return value

    @field_validator("answer")
    @classmethod
    def _answer_says_what_ran(cls, value: str, info: ValidationInfo) -> str:
        """An answer never quotes a value the agent sent as a call's argument: a reviewer
        may edit that call, and the answer would then contradict what ran. It reads the
        call's result (`{results.tool.field}`) instead."""
        sent: dict[str, str] = {}
        for turn in info.data.get("plan", ()):
            for planned in turn:
                for text in _strings(planned.args):
                    for name in PLACEHOLDER.findall(text):
                        sent.setdefault(name, planned.tool)
        for name in PLACEHOLDER.findall(value):
            if name in sent:
                raise ValueError(
                    f"the answer quotes {{{name}}}, which the plan sends to '{sent[name]}'; "
                    "a reviewer may edit that call, so read what ran from its result "
                    f"({{results.{sent[name]}.<field>}})"
                )
        return value


class Fallback(_Strict):
    answer: str
    confidence: float = Field(default=0.2, ge=0, le=1)


class HandOff(_Strict):
    """What the `rules` model does instead of giving an answer whose confidence is below
    `below` (no intent, a missing detail, a denial it cannot answer, a low-confidence
    intent): it proposes `call` (typically `handoff.<agent>`), once per conversation.
    Its args may read `{answer}` (the answer it would have given), `{denial.code}`,
    `{denial.message}` and the intent's extracted values."""

    below: float = Field(ge=0, le=1)
    call: PlannedCall


class RulesConfig(_Strict):
    intents: tuple[Intent, ...] = ()
    fallback: Fallback = Fallback(answer="I can't help with that request.")
    hand_off: HandOff | None = None


# --- the agent spec -------------------------------------------------------------------


class A2AAgentRef(_Strict):
    """A remote A2A agent this agent may call as the tool `a2a.<name>` (steward/a2a_tools/).

    `card_url` is the URL of its agent card (e.g. `https://b.example/a2a/desk/.well-known/
    agent-card.json`); the card is pinned like an MCP tool definition and its JWS signature
    verified when present, against `jwks_url` or else the JWK Set its header names (which
    must then be on the card's own origin). `token_env` names the environment variable
    holding the Bearer token. The call is a write that is never retried unless `effect` /
    `idempotent` say otherwise."""

    card_url: str = Field(pattern=r"^https?://\S+$")
    token_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    jwks_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    require_signature: bool = False
    effect: str = Field(default="write", pattern="^(read|write)$")
    idempotent: bool = False
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=600, allow_inf_nan=False)
    # how long one call may wait for the remote task to end (approvals at the remote agent
    # included); limits.tool_timeout_seconds applies when not set
    call_timeout_seconds: float | None = Field(default=None, gt=0, le=86400, allow_inf_nan=False)


class Orchestration(_Strict):
    """The agents this one may delegate to (steward/orchestration/), as the tools
    `delegate.<agent>` (the specialist answers; this agent carries on with its answer)
    and `handoff.<agent>` (the specialist takes over: its answer ends this run).
    `max_agent_hops`: how deep a run tree may grow below its root (the root's spec
    decides for the whole tree). `fallback`: where a tree goes that is too deep or loops:
    `human` (the run ends escalated with the reason) or an agent name to hand it to."""

    agents: tuple[Annotated[str, Field(pattern=NAME_RE)], ...] = ()
    max_agent_hops: int = Field(default=3, ge=1, le=16, strict=True)
    fallback: str = Field(default="human", pattern=NAME_RE)


DELEGATION_PREFIXES = ("delegate.", "handoff.")


class AgentSpec(_Strict):
    name: str = Field(pattern=NAME_RE)
    description: str = ""
    model: ModelRef
    # per-role models (tiered routing); a role not named here uses `model`
    models: dict[
        Annotated[str, Field(pattern=r"^(route|classify|reason|summarize)$")], ModelRef
    ] = {}
    cache: CacheConfig = CacheConfig()
    prompt: str = ""
    # the prompt in its own file (spec/prompt.py), relative to this spec; its text is part
    # of the agent's version. Mutually exclusive with `prompt`.
    prompt_file: str | None = Field(default=None, min_length=1)
    # sampling temperature of the agent's model calls (a prompt file's `temperature`)
    temperature: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    tools: tuple[str, ...] = ()
    toolsets: tuple[Annotated[str, Field(pattern=r"^[\w.]+:[\w]+$")], ...] = ()
    decision_authority: DecisionAuthority = DecisionAuthority()
    conditions: tuple[Condition, ...] = ()
    data_access: DataAccess = DataAccess()
    rate_limits: dict[str, Annotated[RateLimit, BeforeValidator(parse_rate)]] = {}
    cost_controls: CostControls = CostControls()
    limits: Limits = Limits()
    escalation: Escalation = Escalation()
    approvals: Approvals = Approvals()
    egress: Egress | None = None
    injection: InjectionPolicy = InjectionPolicy()
    # MCP servers whose tools this agent may call, as `server.tool` (steward/mcp/)
    mcp_servers: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")], McpServer] = {}
    # remote A2A agents this agent may call, as the tool `a2a.<name>` (steward/a2a_tools/)
    a2a_agents: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]{0,63}$")], A2AAgentRef] = {}
    rules: RulesConfig | None = None
    # the specialists this agent may delegate to or hand off to (steward/orchestration/)
    orchestration: Orchestration | None = None
    monitors: Monitors | None = None
    # the evaluation suite (its `name:`) a version must pass before a label may point at it
    # (`steward agents promote`, evals/promotion.py)
    required_suite: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_\-]{0,63}$")

    @field_validator("model", mode="before")
    @classmethod
    def _model_shorthand(cls, value: Any) -> Any:
        return _name_shorthand(value)

    @field_validator("models", mode="before")
    @classmethod
    def _models_shorthand(cls, value: Any) -> Any:
        return (
            {k: _name_shorthand(v) for k, v in value.items()} if isinstance(value, dict) else value
        )


Path = tuple[str | int, ...]


def check_references(spec: AgentSpec) -> list[tuple[Path, str]]:
    """Cross-field checks, each with the exact path of the offending value."""
    problems: list[tuple[Path, str]] = []
    if spec.prompt_file is not None and spec.prompt:
        problems.append((("prompt_file",), "give `prompt` or `prompt_file`, not both"))
    listed = set(spec.tools)
    for index, name in enumerate(spec.tools):
        if spec.tools.index(name) != index:
            problems.append((("tools", index), f"'{name}' is listed twice"))
    seen: dict[str, str] = {}
    for tier in Tier:
        for index, tool in enumerate(getattr(spec.decision_authority, tier.value)):
            path: Path = ("decision_authority", tier.value, index)
            if tool in seen:
                problems.append((path, f"'{tool}' is already listed under '{seen[tool]}'"))
            seen[tool] = tier.value
            if tool not in listed and tier is not Tier.FORBIDDEN:
                problems.append((path, f"'{tool}' is not in the agent's `tools` list"))
    for index, tool in enumerate(spec.decision_authority.autonomous):
        if tool == ASK_HUMAN:
            problems.append(
                (
                    ("decision_authority", "autonomous", index),
                    f"'{tool}' always waits for a person: list it under "
                    "requires_human_review or in no tier",
                )
            )
    for index, condition in enumerate(spec.conditions):
        if condition.tool not in listed:
            problems.append(
                (("conditions", index, "tool"), f"'{condition.tool}' is not in `tools`")
            )
    ids = [c.id for c in spec.conditions]
    for index, cid in enumerate(ids):
        if ids.index(cid) != index:
            problems.append((("conditions", index, "id"), f"duplicate condition id '{cid}'"))
    for tool in spec.rate_limits:
        if tool not in listed:
            problems.append((("rate_limits", tool), f"'{tool}' is not in `tools`"))
    for server, config in spec.mcp_servers.items():
        for tool in config.tools:
            if f"{server}.{tool}" not in listed:
                problems.append((("mcp_servers", server, "tools", tool),
                                 f"'{server}.{tool}' is not in `tools`"))  # fmt: skip
    for index, name in enumerate(spec.tools):
        if name.startswith("a2a.") and name[4:] not in spec.a2a_agents:
            problems.append((("tools", index), f"'{name}' names no entry of `a2a_agents`"))
    problems.extend(_delegation_problems(spec))
    if "a2a" in spec.mcp_servers:
        problems.append((("mcp_servers", "a2a"), "'a2a' names the remote A2A agents' tools"))
    if spec.model.name == "rules" and spec.rules is None:
        problems.append((("model", "name"), "model 'rules' needs a `rules:` section"))
    problems.extend(_external_problems(spec))
    problems.extend(_monitor_problems(spec))
    return problems


def _delegation_problems(spec: AgentSpec) -> list[tuple[Path, str]]:
    """A `delegate.x` / `handoff.x` tool names an agent of `orchestration.agents`."""
    agents = spec.orchestration.agents if spec.orchestration is not None else ()
    problems: list[tuple[Path, str]] = []
    for index, name in enumerate(spec.tools):
        prefix = next((p for p in DELEGATION_PREFIXES if name.startswith(p)), None)
        if prefix is not None and name[len(prefix) :] not in agents:
            problems.append((("tools", index),
                             f"'{name}' names no agent of `orchestration.agents`"))  # fmt: skip
    for name in {"delegate", "handoff"} & set(spec.mcp_servers):
        problems.append((("mcp_servers", name), f"'{name}' names the delegation tools"))
    if spec.orchestration is not None:
        for index, agent in enumerate(spec.orchestration.agents):
            if agent == spec.name:
                problems.append((("orchestration", "agents", index),
                                 "an agent cannot delegate to itself"))  # fmt: skip
    return problems


def _monitor_problems(spec: AgentSpec) -> list[tuple[Path, str]]:
    if spec.monitors is None:
        return []
    problems: list[tuple[Path, str]] = []
    for name, metric in spec.monitors.metrics.items():
        shifts = [f for f in ("shift", "shift_sigma", "shift_percent") if getattr(metric, f)]
        for extra in shifts[1:]:
            problems.append(
                (("monitors", "metrics", name, extra), f"give one of {', '.join(shifts)}, not both")
            )
        if name in {"accuracy", "escalation_rate", "denial_rate"} and (metric.shift or 0) >= 1:
            problems.append(
                (("monitors", "metrics", name, "shift"), "a rate's shift is a fraction below 1")
            )
    return problems


def _external_problems(spec: AgentSpec) -> list[tuple[Path, str]]:
    """An external agent has no model for steward to call: nothing may configure one."""
    external = "an external agent's model calls are its own program's"
    if spec.model.name != EXTERNAL:
        return [
            (("models", role), f"model '{EXTERNAL}' cannot serve one role: {external}")
            for role, ref in spec.models.items()
            if ref.name == EXTERNAL
        ] + [
            (("model", "fallbacks", i), f"model '{EXTERNAL}' cannot be a fallback")
            for i, ref in enumerate(spec.model.fallbacks)
            if ref.name == EXTERNAL
        ]
    problems: list[tuple[Path, str]] = []
    if spec.model.fallbacks:
        problems.append(
            (("model", "fallbacks"), f"model '{EXTERNAL}' has no fallbacks: {external}")
        )
    for role in spec.models:
        problems.append((("models", role), f"model '{EXTERNAL}' routes no roles: {external}"))
    if spec.model.base_url is not None or spec.model.api_key_env is not None:
        problems.append((("model", "base_url" if spec.model.base_url else "api_key_env"),
                         f"model '{EXTERNAL}' takes no endpoint: {external}"))  # fmt: skip
    if spec.rules is not None:
        problems.append((("rules",), f"`rules:` configures the 'rules' model, not '{EXTERNAL}'"))
    if spec.cache.enabled or spec.cache.semantic.enabled:
        problems.append((("cache",), f"steward caches only its own model calls: {external}"))
    return problems


# --- prompt files ---------------------------------------------------------------------
# Prompt files: a prompt in its own versioned YAML file, referenced by agent specs.
#
#     # prompts/support-desk.yaml
#     name: support-desk
#     model: rules
#     temperature: 0.2
#     max_tokens: 800
#     expected_output_format: one short paragraph
#     evaluation_rubric: |
#       5: answers the question accurately ...
#     system_prompt: |
#       You are a support agent ...
#
# An agent spec names it with `prompt_file: prompts/support-desk.yaml` (relative to the
# spec's own file). The prompt's text is part of the agent's version: the version is the
# hash of the spec text and the prompt file's text, so changing a prompt is a new version
# of every agent that uses it. Its `evaluation_rubric` is what an evaluation's LLM judge
# scores against when the suite gives no rubric of its own.
class PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_RE)
    model: str | None = Field(default=None, pattern=MODEL_NAME)
    temperature: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, ge=1, strict=True)
    expected_output_format: str = ""
    evaluation_rubric: str = ""
    system_prompt: str = Field(min_length=1)


class PromptSource(BaseModel):
    """A prompt file as an agent version holds it: where it was read and its text."""

    model_config = ConfigDict(frozen=True)

    path: str
    text: str
    prompt: PromptFile


class LoadedSpec(BaseModel):
    """A validated spec with where it came from and its content hash (its version). With
    a `prompt_file`, `spec.prompt` holds the file's system prompt, `prompt` the file, and
    the version hashes both texts."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    spec: AgentSpec
    path: str
    text: str
    version: str
    prompt: PromptSource | None = None  # when the spec names a prompt_file
