"""Server-Sent Events: a run's journal events as they commit, and the model's tokens as
they stream. `Last-Event-ID` (a journal id) resumes a dropped stream without gaps;
tokens are live only (the journal keeps each whole model turn).

On PostgreSQL a run may be driven by another replica or a `steward worker`: its events
come from the events table (store/watch.py), its tokens over the token relay
(store/token_relay.py). A stream starts reading once the driving processes were told
that the run is followed (RELAY_PATIENCE at most), so the text streamed from then on
reaches it; what streamed before is in the journal's turns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from steward.security.keys import Permission, Principal
from steward.server.api._common import MAX_ID, service_of
from steward.server.auth import check, principal
from steward.server.schemas import EventOut
from steward.store.audit import query_events
from steward.store.runs import get_run

router = APIRouter(prefix="/v1/runs", tags=["runs"])
KEEPALIVE_SECONDS = 15.0
PAGE = 500
RELAY_PATIENCE = 1.0  # seconds a stream waits for the token relay to announce it


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get(
    "/{run_id}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_run(
    run_id: str,
    request: Request,
    who: Principal = Depends(principal),
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Follow a run: each journal event as `event: <type>` with its id, each streamed
    model text chunk as `event: token`; the stream ends after `run.finished`."""
    service = service_of(request)
    row = await asyncio.to_thread(get_run, service.db, run_id)
    check(who, Permission.READ, row.agent)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    after = min(after, MAX_ID)

    async def events() -> AsyncIterator[str]:
        nonlocal after
        follower = service.follow(run_id)
        try:
            if not follower.listening.is_set():
                await asyncio.to_thread(follower.listening.wait, RELAY_PATIENCE)
            while True:
                follower.news.clear()
                tokens, follower.tokens[:] = list(follower.tokens), []
                for text in tokens:
                    yield sse("token", {"text": text})
                entries = await asyncio.to_thread(
                    query_events, service.db, run_id=run_id, after_id=after, limit=PAGE
                )
                for entry in entries:
                    after = entry.id
                    if entry.type == "run.finished":
                        # text streamed while the journal was being read goes out first
                        for text in follower.tokens:
                            yield sse("token", {"text": text})
                        yield sse(entry.type, EventOut.of(entry).model_dump(), entry.id)
                        return
                    yield sse(entry.type, EventOut.of(entry).model_dump(), entry.id)
                if len(entries) == PAGE:
                    continue
                if await request.is_disconnected():
                    return
                try:
                    await asyncio.wait_for(follower.news.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            service.unfollow(run_id, follower)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
