"""The token relay (store/token_relay.py) over a real PostgreSQL: chunks reach a follower
in another relay in order, whole past the NOTIFY payload limit, once; a process never
hands its own chunks to itself; nothing is sent for a run nobody follows; the relay
comes back after its sessions are terminated; a relay that cannot reach the database
drops and counts, and publishing stays as cheap as ever."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from conftest import NamedPostgres
from steward.store import Database
from steward.store.token_relay import QUEUE_LIMIT, TokenRelay

WAIT = 10.0


class Heard:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, run_id: str, text: str) -> None:
        with self.lock:
            self.chunks.append((run_id, text))

    def text(self, run_id: str) -> str:
        with self.lock:
            return "".join(t for r, t in self.chunks if r == run_id)


def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.fixture
def relays(postgres_db: Database) -> Iterator[tuple[TokenRelay, TokenRelay, Heard]]:
    """A driving relay (a worker's) and a following one (a server's)."""
    heard = Heard()
    driver = TokenRelay(postgres_db).start()
    follower = TokenRelay(postgres_db, on_tokens=heard, drives=False).start()
    try:
        yield driver, follower, heard
    finally:
        driver.close()
        follower.close()


def test_chunks_reach_a_follower_in_order_whole_and_once(
    relays: tuple[TokenRelay, TokenRelay, Heard],
) -> None:
    driver, follower, heard = relays
    assert follower.follow("run_a").wait(WAIT)
    until(lambda: driver.followed_elsewhere("run_a"), "the driver heard of the follower")
    long = "é" * 6000 + "ü" * 6000  # 24,000 bytes: several notifications
    chunks = [f"{i} " for i in range(300)] + [long, "end."]
    for text in chunks:
        driver.publish("run_a", text)
    until(lambda: heard.text("run_a") == "".join(chunks), "every chunk, in order")
    time.sleep(0.3)  # nothing more comes (no duplicate)
    assert heard.text("run_a") == "".join(chunks)
    assert driver.counts["sent"] == len(chunks) and driver.counts["dropped"] == 0


def test_a_process_never_hands_its_own_chunks_to_itself(postgres_db: Database) -> None:
    """A replica that drives a run and follows it has its followers fed in process; the
    chunks it publishes for another replica's followers come back to it and are dropped."""
    mine, theirs = Heard(), Heard()
    replica = TokenRelay(postgres_db, on_tokens=mine).start()
    other = TokenRelay(postgres_db, on_tokens=theirs).start()
    try:
        assert replica.follow("run_b").wait(WAIT) and other.follow("run_b").wait(WAIT)
        until(lambda: replica.followed_elsewhere("run_b"), "the replica heard of the other")
        replica.publish("run_b", "only ")
        replica.publish("run_b", "once")
        until(lambda: theirs.text("run_b") == "only once", "the other replica's chunks")
        time.sleep(0.3)
        assert mine.chunks == []
    finally:
        replica.close()
        other.close()


def test_nothing_is_sent_for_a_run_nobody_follows(
    relays: tuple[TokenRelay, TokenRelay, Heard],
) -> None:
    driver, follower, heard = relays
    assert follower.follow("run_followed").wait(WAIT)
    until(lambda: driver.followed_elsewhere("run_followed"), "the driver heard of the follower")
    driver.publish("run_alone", "nobody reads this")
    driver.publish("run_followed", "read")
    until(lambda: heard.text("run_followed") == "read", "the followed run's chunk")
    assert not driver.followed_elsewhere("run_alone")
    assert driver.counts["sent"] == 1
    follower.unfollow("run_followed")
    assert heard.text("run_alone") == ""


def test_the_relay_comes_back_after_its_sessions_are_terminated(
    postgres_named: NamedPostgres,
) -> None:
    heard = Heard()
    driver = TokenRelay(postgres_named.db).start()
    follower = TokenRelay(postgres_named.db, on_tokens=heard, drives=False).start()
    try:
        assert follower.follow("run_c").wait(WAIT)
        until(lambda: driver.followed_elsewhere("run_c"), "the driver heard of the follower")
        assert postgres_named.terminate_backends() >= 4  # both relays' sessions, and more
        n = 0

        def published_and_heard() -> bool:
            nonlocal n
            n += 1
            driver.publish("run_c", f"{n};")
            time.sleep(0.05)
            return bool(heard.chunks)

        until(published_and_heard, "a chunk published after the fault is heard", 30)
        faults = driver.counts["listen_faults"] + follower.counts["listen_faults"]
        assert faults >= 2, (driver.counts, follower.counts)
        numbers = [int(x) for x in heard.text("run_c").rstrip(";").split(";")]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    finally:
        driver.close()
        follower.close()


def test_a_relay_that_cannot_reach_the_database_drops_and_counts(
    postgres_named: NamedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its sessions terminated and no new one to be had: publishing neither raises nor
    waits, chunks past the queue's limit are dropped and counted."""
    heard = Heard()
    driver = TokenRelay(postgres_named.db).start()
    follower = TokenRelay(postgres_named.db, on_tokens=heard, drives=False).start()
    try:
        assert follower.follow("run_d").wait(WAIT)
        until(lambda: driver.followed_elsewhere("run_d"), "the driver heard of the follower")

        def refused() -> None:
            raise psycopg.OperationalError("connection refused (test)")

        monkeypatch.setattr(driver, "_connect", refused)
        postgres_named.terminate_backends()

        def sender_lost_its_session() -> bool:
            driver.publish("run_d", "lost ")
            time.sleep(0.01)
            return driver.counts["send_faults"] >= 1

        until(sender_lost_its_session, "the sender found its session gone")
        began = time.perf_counter()
        for i in range(QUEUE_LIMIT + 500):
            driver.publish("run_d", f"{i} ")
        took = time.perf_counter() - began
        assert driver.counts["dropped"] >= 500, driver.counts
        assert took < 1.0, f"{QUEUE_LIMIT + 500} publishes took {took:.3f} s"
    finally:
        driver.close()
        follower.close()


def test_a_malformed_notification_is_counted_and_the_next_chunks_still_arrive(
    relays: tuple[TokenRelay, TokenRelay, Heard], postgres_db: Database
) -> None:
    """Anything on the tokens channel that is not a chunk (another program's NOTIFY, a
    payload cut short) is counted as malformed and never reaches a follower; the
    relay goes on with the chunks after it."""
    from steward.store.token_relay import TOKENS

    driver, follower, heard = relays
    assert follower.follow("run_m").wait(WAIT)
    until(lambda: driver.followed_elsewhere("run_m"), "the driver heard of the follower")
    dsn = postgres_db.writer.url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as other:
        for payload in ("not json", "[1, 2]", '{"o": "x", "r": "run_m"}', '{"o": "x", "s": "y"}'):
            other.execute("SELECT pg_notify(%s, %s)", (TOKENS, payload))
    until(lambda: follower.counts["malformed"] == 4, "four malformed notifications counted")
    driver.publish("run_m", "still here")
    until(lambda: heard.text("run_m") == "still here", "the chunk after them")
    assert heard.chunks == [("run_m", "still here")]
