"""Health endpoints for orchestrators and load balancers, without a key.

- `/livez`: the process is alive and serving (no I/O). Restart it only when this fails.
- `/readyz`: the store takes writes: the journal is not in an outage or stopped, and the
  database answers a write round-trip and is the database the server opened (a SQLite
  file deleted or replaced under it is not). 503 with `Retry-After` and the reason when
  not; send it traffic only when this answers 200.
- `/healthz`: the same as `/readyz` (it used to answer 200 whatever the store's state).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from steward.core.errors import StoreUnavailable
from steward.server.api._common import service_of

router = APIRouter(tags=["ops"])

PROBE_LOCK_WAIT = 1.0  # seconds the probe waits for a lock held elsewhere


@router.get("/livez")
def livez() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz")
async def readyz(request: Request) -> dict[str, str]:
    journal = service_of(request).journal
    health = journal.health()
    if not health.ok:
        raise health.error()
    problem = await asyncio.to_thread(journal.db.probe, PROBE_LOCK_WAIT)
    if problem:
        raise StoreUnavailable(problem, retry_after=1.0)
    return {"status": "ready"}


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, str]:
    """Kept for the probes that ask it: it means ready."""
    return await readyz(request)
