"""Models from a spec: each `provider:model` through its provider, wrapped in a fallback
chain with circuit breakers, and routed by role. A missing API key is an error here, at
start-up, not at the first call."""

from __future__ import annotations

from steward.core.breaker import CircuitBreakers
from steward.core.errors import ModelError
from steward.models.external import ExternalModel
from steward.models.protocol import Model
from steward.models.retry import RetryPolicy
from steward.models.routing import FallbackModel, RoleRouter
from steward.models.rules import RulesModel
from steward.spec.models import EXTERNAL, AgentSpec, ModelRef, ProviderRef


def provider_model(ref: ProviderRef, spec: AgentSpec) -> Model:
    """One model at one provider. Raises ModelError (model.auth, model.config)."""
    provider, _, model = ref.name.partition(":")
    if ref.name == "rules":
        if spec.rules is None:
            raise ModelError("model 'rules' needs a `rules:` section", code="model.config")
        return RulesModel(spec.rules)
    if ref.name == EXTERNAL:
        return ExternalModel()
    if ref.name == "scripted":
        raise ModelError("model 'scripted' is supplied in code: build_agent(..., model=ScriptedModel(...))",
                         code="model.config")  # fmt: skip
    if provider == "openai":
        from steward.models.providers.openai_compat import OpenAICompatModel

        return OpenAICompatModel.from_env(model, base_url=ref.base_url, api_key_env=ref.api_key_env or "OPENAI_API_KEY",
                                          timeout=ref.timeout_seconds)  # fmt: skip
    if provider == "anthropic":
        from steward.models.providers.anthropic_messages import AnthropicModel

        return AnthropicModel.from_env(model, base_url=ref.base_url,
                                       api_key_env=ref.api_key_env or "ANTHROPIC_API_KEY",
                                       timeout=ref.timeout_seconds)  # fmt: skip
    raise ModelError(f"unknown model provider {provider!r}", code="model.config")


def chain(ref: ModelRef, spec: AgentSpec, breakers: CircuitBreakers) -> Model:
    primary = provider_model(ref, spec)
    if not ref.fallbacks and ref.name in {"rules", "scripted", EXTERNAL}:
        return primary
    r = ref.retries
    retries = RetryPolicy(
        r.attempts, r.backoff_seconds, r.max_backoff_seconds, r.max_retry_after_seconds
    )
    models = [primary, *(provider_model(f, spec) for f in ref.fallbacks)]
    return FallbackModel(models, breakers, retries)


def models_for(spec: AgentSpec) -> Model:
    """The agent's model: its chain, or a router when the spec names models per role."""
    breakers = CircuitBreakers(threshold=3, cooldown=30.0)  # shared: one provider, one circuit
    default = chain(spec.model, spec, breakers)
    if not spec.models:
        return default
    return RoleRouter(
        default, {role: chain(ref, spec, breakers) for role, ref in spec.models.items()}
    )


def model_names(model: Model) -> list[str]:
    """Every concrete model a (wrapped) model may call, to bound its cost."""
    if isinstance(model, RoleRouter):
        return [
            *model_names(model.default),
            *(n for m in model.by_role.values() for n in model_names(m)),
        ]
    if isinstance(model, FallbackModel):
        return [n for m in model.chain for n in model_names(m)]
    return [model.name]
