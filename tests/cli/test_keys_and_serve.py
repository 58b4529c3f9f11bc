"""`steward keys` and `steward serve`: issue a key, use it against a real served process,
revoke it, and see it refused."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from server.served import STEWARD, steward_serve
from steward.cli.main import app


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def _get(url: str, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_keys_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_DB", f"sqlite:///{tmp_path / 'steward.db'}")
    out = _cli("keys", "create", "--name", "ana", "--role", "reviewer")
    token = out.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    assert token.startswith("stw_") and f"key {key_id} (reviewer) issued to ana" in out
    listed = _cli("keys", "list")
    assert key_id in listed and token not in listed
    assert "an agent key names its agent" in _cli(
        "keys", "create", "--name", "b", "--role", "agent", code=2
    )
    refused = _cli("keys", "create", "--name", "b", "--role", "root", code=2)
    assert "'root' is not one of 'admin', 'reviewer', 'viewer', 'agent'" in refused
    _cli("keys", "revoke", key_id, "--comment", "left the team")
    assert key_id not in _cli("keys", "list") and key_id in _cli("keys", "list", "--all")
    assert "already revoked" in _cli("keys", "revoke", key_id, code=1)  # a conflict
    audit = _cli("audit", "export", "--jsonl")
    assert "key.created" in audit and "key.revoked" in audit and token not in audit


def test_serve_answers_with_keys_and_refuses_without(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'steward.db'}"
    env = {**os.environ, "STEWARD_DB": db_url,
           "STEWARD_DEMO_SYSTEMS": str(tmp_path / "systems.db"), "STEWARD_TELEMETRY": "off"}  # fmt: skip
    created = subprocess.run(
        [str(STEWARD), "keys", "create", "--name", "ops", "--role", "admin"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    token = created.stdout.strip().splitlines()[-1]
    with steward_serve(db_url, "--demo", env=env) as base:
        status, body = _get(f"{base}/v1/agents", token)
        assert status == 200 and body[0]["name"] == "support-desk"  # type: ignore[index]
        status, body = _get(f"{base}/v1/agents", "stw_0123456789ab_" + "A" * 43)
        assert status == 401 and body["error"]["code"] == "auth.unauthenticated"  # type: ignore[index]


def test_serve_refuses_a_bad_spec_naming_file_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEWARD_DB", f"sqlite:///{tmp_path / 'steward.db'}")
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nmodel: rules\ntools: [nope]\n")
    out = _cli("serve", "--agent", str(spec), code=2)
    assert f"{spec}:2:1: model.name:" in out
    assert "no such file" in _cli("serve", "--agent", str(tmp_path / "missing.yaml"), code=3)


@pytest.mark.parametrize("value", ["0", "-1", "5000", "often"])
def test_serve_refuses_a_sweep_interval_out_of_range_naming_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("STEWARD_DB", f"sqlite:///{tmp_path / 'steward.db'}")
    out = _cli("serve", "--sweep-seconds", value, code=2)
    assert "--sweep-seconds" in out and "Invalid value" in out
