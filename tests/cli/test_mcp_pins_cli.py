"""`steward mcp pins list|approve`: quarantined MCP tool definitions, approved by an admin
(a key is required: the audit records who), bound to the definition reviewed."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from steward.cli.main import app
from steward.security.keys import Role
from steward.store import Database
from steward.store.keys import create_key
from steward.store.mcp_pins import get_pin, observe_pin


def steward(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("".join(traceback.format_exception(*result.exc_info)))
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("STEWARD_DB", f"sqlite:///{tmp_path / 'steward.db'}")
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.delenv("STEWARD_API_KEY", raising=False)
    database = Database.open(f"sqlite:///{tmp_path / 'steward.db'}")
    observe_pin(database, "desk", "t.add", "a" * 64, '{"v":1}')
    observe_pin(database, "desk", "t.add", "b" * 64, '{"v":2}')
    observe_pin(database, "desk", "t.echo", "c" * 64, '{"v":1}')
    return database


def test_list_and_approve(db: Database) -> None:
    listed = json.loads(steward("mcp", "pins", "list", "--quarantined", "--json").output)
    assert [(p["tool"], p["reason"], p["definition"]) for p in listed] == [
        ("t.add", "mcp.definition_changed", '{"v":2}')
    ]
    table = steward("mcp", "pins", "list").output
    assert "t.echo" in table and "desk t.add: mcp.definition_changed" in table
    steward("mcp", "pins", "approve", "desk", "t.add", code=4)  # who approves? a key says
    _, viewer = create_key(db, name="val", role=Role.VIEWER, by="test")
    steward("mcp", "pins", "approve", "desk", "t.add", "--key", viewer, code=4)
    _, admin = create_key(db, name="ada", role=Role.ADMIN, by="test")
    stale = steward("mcp", "pins", "approve", "desk", "t.add", "--key", admin,
                    "--sha256", "d" * 64, code=1)  # fmt: skip
    assert "review it again" in stale.output
    steward("mcp", "pins", "approve", "desk", "t.nope", "--key", admin, code=3)
    done = steward("mcp", "pins", "approve", "desk", "t.add", "--key", admin,
                   "--sha256", "b" * 64, "--json")  # fmt: skip
    assert json.loads(done.output)["status"] == "pinned"
    pin = get_pin(db, "desk", "t.add")
    assert pin is not None and pin.approved_sha256 == "b" * 64 and pin.updated_by == "admin:ada"


def test_validate_never_starts_a_server_and_accepts_its_tools(tmp_path: Path) -> None:
    spec = tmp_path / "desk.yaml"
    spec.write_text(
        "name: desk\nmodel: external\ntoolsets: ['steward.demo.tools:support_tools']\n"
        "tools: [lookup_order, crm.lookup]\ndecision_authority:\n"
        "  autonomous: [lookup_order, crm.lookup]\n"
        "mcp_servers:\n  crm:\n    command: /nonexistent/server\n",
        encoding="utf-8",
    )
    out = json.loads(steward("validate", str(spec), "--json").output)
    assert (out["agent"], out["tools"]) == ("desk", 2)
