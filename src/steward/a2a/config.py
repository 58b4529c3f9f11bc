"""How a server serves its agents over A2A: the key that signs every agent card, its key
id, and (optionally) the public URL callers reach the server at."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from steward.core.errors import InvalidInput

KEY_ENV = "STEWARD_A2A_SIGNING_KEY"  # path to a PEM private key (EC P-256 for ES256)
KEY_ID_ENV = "STEWARD_A2A_KEY_ID"
URL_ENV = "STEWARD_A2A_URL"  # e.g. https://agents.example.com; default: the request's


@dataclass(frozen=True, slots=True)
class A2AConfig:
    """The card-signing key (PEM) and its id; `public_url` overrides the URL the cards
    name (behind a proxy the request's own URL is not the one callers use)."""

    signing_key: bytes
    key_id: str = "steward-a2a"
    algorithm: str = "ES256"
    public_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> A2AConfig:
        """The configuration from STEWARD_A2A_*; without a signing key A2A cannot serve
        (an unsigned card is not served)."""
        path = env.get(KEY_ENV, "").strip()
        if not path:
            raise InvalidInput(
                f"{KEY_ENV}: serving A2A needs a key to sign agent cards (a PEM EC P-256 "
                "private key file; e.g. `openssl ecparam -name prime256v1 -genkey -noout`)"
            )
        try:
            key = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{KEY_ENV}: cannot read {path}: {exc.strerror}") from exc
        return cls(
            signing_key=key,
            key_id=env.get(KEY_ID_ENV, "").strip() or "steward-a2a",
            public_url=env.get(URL_ENV, "").strip().rstrip("/"),
        )
