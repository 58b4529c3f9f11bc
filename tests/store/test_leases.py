"""Run leases: on PostgreSQL one process's lease keeps every other process from driving
the run until it is given back or the process's session ends; on SQLite they are this
process's bookkeeping."""

from __future__ import annotations

from conftest import NamedPostgres
from steward.store import Database
from steward.store.leases import RunLeases


def test_a_lease_keeps_other_processes_off_until_given_back(postgres_db: Database) -> None:
    mine, theirs = RunLeases(postgres_db), RunLeases(postgres_db)
    try:
        assert mine.take("run_1")
        assert not theirs.take("run_1"), "held by another session"
        assert not mine.take("run_1"), "driven here already"
        assert theirs.take("run_2")
        mine.give_back("run_1")
        assert theirs.take("run_1")
    finally:
        mine.close()
        theirs.close()


def test_a_lease_ends_with_its_holders_session(postgres_db: Database) -> None:
    dead, alive = RunLeases(postgres_db), RunLeases(postgres_db)
    try:
        assert dead.take("run_1")
        dead.close()  # as a killed process's connection closes
        assert alive.take("run_1")
    finally:
        alive.close()


def test_a_session_terminated_under_it_takes_its_leases_again(
    postgres_named: NamedPostgres,
) -> None:
    leases, other = RunLeases(postgres_named.db), RunLeases(postgres_named.db)
    try:
        assert leases.take("run_1")
        assert postgres_named.terminate_backends() >= 1
        assert leases.take("run_2")  # a new session, holding run_1 again
        assert not other.take("run_1")
        assert leases.held() == {"run_1", "run_2"}
    finally:
        leases.close()
        other.close()


def test_on_sqlite_leases_are_bookkeeping(sqlite_db: Database) -> None:
    leases = RunLeases(sqlite_db)
    assert not leases.shared
    assert leases.take("run_1") and not leases.take("run_1")
    leases.give_back("run_1")
    assert leases.take("run_1")
