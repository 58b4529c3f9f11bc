"""An agent's A2A card: who it is, where its JSON-RPC endpoint is, how to authenticate
(a steward key as a Bearer token), and the skills its policy allows; signed with JWS over
the card's RFC 8785 canonical JSON (the SDK's signer, as the A2A spec describes)."""

from __future__ import annotations

import json
from typing import Any

from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
)
from a2a.utils.constants import PROTOCOL_VERSION_1_0
from a2a.utils.signing import ProtectedHeader, create_agent_card_signer
from jwt.algorithms import get_default_algorithms

from steward.a2a.config import A2AConfig
from steward.runtime import AgentRuntime
from steward.spec.models import Tier

SCHEME = "steward"  # the security scheme's name in the card
JSONRPC = "JSONRPC"


def agent_path(agent: str) -> str:
    """Where an agent's A2A endpoint lives; its card is under `.well-known/` there."""
    return f"/a2a/{agent}"


JWKS_PATH = "/a2a/.well-known/jwks.json"


def skills_of(agent: AgentRuntime) -> list[AgentSkill]:
    """The tools the agent's spec lists and its policy lets it use (alone or after a
    person's review): a forbidden or untiered tool is not a skill it offers."""
    skills = []
    for name in agent.loaded.spec.tools:
        tool = agent.tools.get(name)
        tier = agent.policy.tier_of(name)
        if tool is None or tier is None or tier is Tier.FORBIDDEN:
            continue
        skills.append(
            AgentSkill(id=name, name=name, description=tool.description or name, tags=[tier.value])
        )
    return skills


def build_card(agent: AgentRuntime, base_url: str) -> AgentCard:
    """The agent's unsigned card, naming its endpoint under `base_url`."""
    spec = agent.loaded.spec
    bearer = HTTPAuthSecurityScheme(
        scheme="bearer",
        bearer_format="steward API key",
        description="a steward API key allowed to start runs of this agent",
    )
    requirement = SecurityRequirement()
    requirement.schemes[SCHEME].SetInParent()
    return AgentCard(
        name=agent.name,
        description=spec.description or agent.name,
        version=agent.version,
        supported_interfaces=[
            AgentInterface(
                url=base_url + agent_path(agent.name),
                protocol_binding=JSONRPC,
                protocol_version=PROTOCOL_VERSION_1_0,
            )
        ],
        capabilities=AgentCapabilities(streaming=True),
        security_schemes={SCHEME: SecurityScheme(http_auth_security_scheme=bearer)},
        security_requirements=[requirement],
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=skills_of(agent),
    )


class CardSigner:
    """Signs cards with the configured key; publishes its public half as a JWK Set."""

    def __init__(self, config: A2AConfig) -> None:
        self.config = config
        algorithm = get_default_algorithms()[config.algorithm]
        self._private = algorithm.prepare_key(config.signing_key)
        public = self._private.public_key()
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(public))
        self.jwks = {"keys": [{**jwk, "kid": config.key_id, "alg": config.algorithm, "use": "sig"}]}

    def signed(self, card: AgentCard, base_url: str) -> dict[str, Any]:
        header = ProtectedHeader(
            kid=self.config.key_id, alg=self.config.algorithm, jku=base_url + JWKS_PATH, typ="JOSE"
        )
        sign = create_agent_card_signer(self._private, header)
        return agent_card_to_dict(sign(card))
