"""What steward pins of a remote A2A agent's card, and how it checks the card's signature.

The pinned definition is the card's canonical JSON without its signatures (a signer may
sign the same card anew on every fetch) plus what the signature check found: a card whose
content is unchanged but whose signature no longer verifies is another definition. The
signature is verified with the SDK's verifier against `jwks_url` when the spec gives one,
else against the JWK Set the signature's header names, which must be on the card's own
origin (a forger could otherwise point at a key of their own).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from a2a.client.card_resolver import parse_agent_card
from a2a.types import AgentCard
from a2a.utils.signing import SignatureVerificationError, create_signature_verifier
from google.protobuf.json_format import MessageToDict

from steward.mcp.definitions import canonical, sha256_of
from steward.spec.models import A2AAgentRef

ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "EdDSA"]


@dataclass(frozen=True)
class SeenCard:
    """A card as fetched: the card, its pinned definition (canonical JSON) and its hash,
    and `finding`: why its signature cannot be trusted ("" when it verified, or when it is
    unsigned and the spec does not require a signature)."""

    card: AgentCard
    definition: str
    sha256: str
    finding: str


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _jku_urls(card: AgentCard) -> set[str]:
    found = set()
    for signature in card.signatures:
        try:
            padded = signature.protected + "=" * (-len(signature.protected) % 4)
            header = json.loads(base64.urlsafe_b64decode(padded))
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(header, dict) and isinstance(header.get("jku"), str):
            found.add(header["jku"])
    return found


def _key_provider(sets: dict[str, dict[str, Any]], fixed: str | None) -> Any:
    def key_for(kid: str | None, jku: str | None) -> Any:
        url = fixed or jku or ""
        for key in sets.get(url, {}).get("keys", []):
            if isinstance(key, dict) and key.get("kid") == kid:
                return jwt.PyJWK(key)
        raise jwt.PyJWTError(f"no key {kid!r} in the JWK Set at {url or '(none named)'}")

    return key_for


async def fetch_card(http: httpx.AsyncClient, config: A2AAgentRef) -> SeenCard:
    """Fetch, parse and check the card at `config.card_url`. Raises on a card that cannot
    be fetched or parsed (nothing to pin); a bad signature is a finding, not an error."""
    response = await http.get(config.card_url)
    response.raise_for_status()
    card = parse_agent_card(response.json())
    unsigned = AgentCard()
    unsigned.CopyFrom(card)
    del unsigned.signatures[:]
    body = MessageToDict(unsigned, preserving_proto_field_name=False)
    finding, verdict = "", "unsigned"
    if card.signatures:
        finding = await _check_signature(http, card, config)
        verdict = "invalid" if finding else "verified"
    elif config.require_signature:
        finding = "the card is not signed and the spec requires a signature"
    text = canonical({"card": body, "signature": verdict})
    return SeenCard(card, text, sha256_of(text), finding)


async def _check_signature(http: httpx.AsyncClient, card: AgentCard, config: A2AAgentRef) -> str:
    urls = {config.jwks_url} if config.jwks_url else _jku_urls(card)
    sets: dict[str, dict[str, Any]] = {}
    for url in sorted(urls):
        if not config.jwks_url and _origin(url) != _origin(config.card_url):
            continue  # a key the card itself points to elsewhere proves nothing
        try:
            fetched = await http.get(url)
            fetched.raise_for_status()
            sets[url] = fetched.json()
        except (httpx.HTTPError, ValueError):
            continue
    if not sets:
        return "the card's signature names no JWK Set steward can use on the card's origin"
    try:
        create_signature_verifier(_key_provider(sets, config.jwks_url), ALGORITHMS)(card)
    except SignatureVerificationError as exc:
        return f"the card's signature does not verify: {exc}"
    return ""
