"""Follow the journal from another process and feed telemetry consumers.

Consumers can run inside the process that writes the journal (simple; what one-shot CLI
commands do), but there they share its GIL: the OpenTelemetry SDK spends tens of
microseconds per span, which lands on every governed call. A follower reads committed
rows in id order from the database instead (ids are assigned under the chain lock at
commit, so rows appear in id order with no gaps) and runs the consumers in its own
process: `steward telemetry follow`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from steward.core.events import decode_event
from steward.store.database import Database
from steward.store.schema import events
from steward.telemetry.stream import Committed, Consumer


@dataclass(frozen=True, slots=True)
class Followed:
    run_id: str | None
    ts: float
    type: str
    event: object


class Follower:
    def __init__(self, db: Database, consumers: Sequence[Consumer], *, from_start: bool = False,
                 batch: int = 1000) -> None:  # fmt: skip
        self.db = db
        self.consumers = list(consumers)
        self.batch = batch
        self.cursor = 0 if from_start else self.head()
        self.delivered = 0
        self.consumer_errors = 0

    def head(self) -> int:
        with self.db.reader.connect() as connection:
            return int(
                connection.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
            )

    def poll(self) -> int:
        """Deliver the next committed batch; returns how many events it held."""
        query = (
            select(events.c.id, events.c.run_id, events.c.ts, events.c.type, events.c.data)
            .where(events.c.id > self.cursor)
            .order_by(events.c.id)
            .limit(self.batch)
        )
        with self.db.reader.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return 0
        items: list[Committed] = [
            Followed(r.run_id, r.ts, r.type, decode_event(r.data)) for r in rows
        ]
        for consumer in self.consumers:
            try:
                consumer(items)
            except Exception:
                self.consumer_errors += 1
        self.cursor = int(rows[-1].id)
        self.delivered += len(items)
        return len(items)

    def run(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Poll until `stop` is set; sleeps only when there was nothing new."""
        while not stop.is_set():
            if self.poll() == 0:
                stop.wait(interval)
        while self.poll():  # drain what committed before the stop
            pass
