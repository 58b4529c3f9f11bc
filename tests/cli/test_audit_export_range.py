"""`steward audit export --csv --since --until`: the console's export code path
(store.audit.export_lines) from the command line, for a range."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steward.cli.main import app
from steward.core.events import RunStarted
from steward.store import Database, Journal


def test_export_a_range_as_csv_and_jsonl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    monkeypatch.setenv("STEWARD_DB", url)
    db = Database.open(url)
    journal = Journal(db)
    try:
        for i, day in enumerate(("2025-12-01", "2025-12-02", "2025-12-03")):
            ts = 1764547200.0 + i * 86400 + 60  # 2025-12-01T00:01Z, then a day apart
            journal.append(
                f"r{i}", RunStarted("desk", "v1", f"on {day}", {"started_by": "ops"}), ts=ts
            )
        journal.flush_sync()
    finally:
        journal.close()
        db.close()
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "export", "--csv", "--since", "2025-12-02",
                                 "--until", "2025-12-02"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["run_id"], r["actor"], r["ts"]) for r in rows] == [
        ("r1", "ops", "2025-12-02T00:01:00.000Z")
    ]
    whole = runner.invoke(app, ["audit", "export", "--jsonl"])
    assert [json.loads(line)["run_id"] for line in whole.output.splitlines()] == ["r0", "r1", "r2"]
    bad = runner.invoke(app, ["audit", "export", "--jsonl", "--since", "later"])
    assert bad.exit_code == 2 and "--since" in bad.output
