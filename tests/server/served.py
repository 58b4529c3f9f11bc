"""Helpers for the server tests: a served app, its keys, polling for a run's state."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key

LARGE_REFUND = (
    "From: ava.haddad@example.com\nSubject: Missing item - refund please\n\n"
    "Order #10114 arrived without the ultralight tent. Please refund $330 for it."
)


@dataclass
class Served:
    client: TestClient
    db: Database
    tokens: dict[str, str]  # role -> token; "agent" is the demo agent's, "other-agent" not

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def as_(self, who: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, headers=self.headers(who), **kwargs)

    def wait_for(self, run_id: str, *states: str, timeout: float = 15.0) -> dict[str, Any]:
        """Poll the run until it reaches one of `states`."""
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = self.as_("admin", "GET", f"/v1/runs/{run_id}").json()
            if body.get("status") in states or time.monotonic() > deadline:
                assert body.get("status") in states, body
                return body
            time.sleep(0.02)

    def start(self, text: str = "", who: str = "admin") -> dict[str, Any]:
        response = self.as_(
            who, "POST", "/v1/runs", json={"agent": "support-desk", "input": text or LARGE_REFUND}
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body


def issue_keys(db: Database) -> dict[str, str]:
    tokens = {}
    for role in (Role.ADMIN, Role.REVIEWER, Role.VIEWER):
        tokens[role.value] = create_key(db, name=f"{role.value}-1", role=role, by="test")[1]
    tokens["agent"] = create_key(db, name="bot", role=Role.AGENT, agent="support-desk", by="test")[
        1
    ]
    tokens["other-agent"] = create_key(
        db, name="other", role=Role.AGENT, agent="another-agent", by="test"
    )[1]
    return tokens
