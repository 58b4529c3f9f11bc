"""Local "systems of record" for the support-desk demo, backed by one SQLite file.

Reads (orders, customers, payment details, KB search) and side effects (refunds, password
resets, emails, data deletions) live here. Every side effect is exactly-once per
``idempotency_key``: the key lookup and the insert happen in one ``BEGIN IMMEDIATE``
transaction, and a ``UNIQUE`` constraint backs it up.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from steward.demo.fixtures import CUSTOMERS, KB_ARTICLES, ORDERS

_SCHEMA = """
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    phone TEXT NOT NULL,
    address TEXT NOT NULL,
    card_brand TEXT NOT NULL,
    card_last4 TEXT NOT NULL
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    status TEXT NOT NULL,
    total_usd REAL NOT NULL,
    items TEXT NOT NULL,
    placed_on TEXT NOT NULL,
    tracking TEXT,
    carrier TEXT,
    eta TEXT
);
CREATE TABLE kb (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE refunds (
    id INTEGER PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(id),
    amount_usd REAL NOT NULL,
    reason TEXT NOT NULL,
    idempotency_key TEXT UNIQUE NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE password_resets (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    idempotency_key TEXT UNIQUE NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE emails_sent (
    id INTEGER PRIMARY KEY,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    idempotency_key TEXT UNIQUE NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE deletions (
    id INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    idempotency_key TEXT UNIQUE NOT NULL,
    created_at REAL NOT NULL
);
"""

TABLES = frozenset(
    {"customers", "orders", "kb", "refunds", "password_resets", "emails_sent", "deletions"}
)
_ORDER_ID = re.compile(r"\s*(?:order\s*)?#?\s*(\d{1,12})\s*", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORD_TEXT = (
    "a an and are as at be but by can do does for from has have how i if in is it its my "
    "me of on or our so that the their there this to was we what when where which who why "
    "will with you your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _normalize_order_id(order_id: str) -> str:
    match = _ORDER_ID.fullmatch(str(order_id))
    if match is None:
        raise LookupError(f"unknown order {order_id!r}: expected an order number like '10023'")
    return match.group(1)


def _normalize_email(email: str) -> str:
    return str(email).strip().lower()


def _require_key(idempotency_key: str) -> str:
    key = str(idempotency_key).strip()
    if not key:
        raise ValueError("idempotency_key must be a non-empty string")
    return key


def _terms(text: str) -> list[str]:
    terms = []
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        terms.append(word)
    return terms


class SupportSystems:
    """Orders, customers, KB and side-effecting support actions over one SQLite database."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.path = path

    # -- lifecycle -----------------------------------------------------------------------

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @classmethod
    def create(cls, path: str | Path) -> SupportSystems:
        """Create (or reset) the database at ``path`` and seed it from the fixtures."""
        db_path = Path(path)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = cls._connect(db_path)
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (c.id, c.name, c.email, c.phone, c.address, c.card_brand, c.card_last4)
                for c in CUSTOMERS
            ],
        )
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    o.id,
                    o.customer_id,
                    o.status,
                    o.total_usd,
                    json.dumps(list(o.items)),
                    o.placed_on,
                    o.tracking,
                    o.carrier,
                    o.eta,
                )
                for o in ORDERS
            ],
        )
        conn.executemany(
            "INSERT INTO kb VALUES (?, ?, ?)", [(a.id, a.title, a.body) for a in KB_ARTICLES]
        )
        conn.execute("COMMIT")
        return cls(conn, db_path)

    @classmethod
    def open(cls, path: str | Path) -> SupportSystems:
        """Open a database previously made by :meth:`create`."""
        db_path = Path(path)
        if not db_path.is_file():
            raise FileNotFoundError(f"no support systems database at {db_path}")
        conn = cls._connect(db_path)
        found = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not TABLES.issubset(found):
            conn.close()
            raise ValueError(f"{db_path} is not a support systems database")
        return cls(conn, db_path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SupportSystems:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- reads ---------------------------------------------------------------------------

    def lookup_order(self, order_id: str) -> dict[str, Any]:
        """Status, shipping and contents of one order (accepts ``"10023"`` or ``"#10023"``)."""
        oid = _normalize_order_id(order_id)
        with self._read() as db:
            row = db.execute("SELECT * FROM orders WHERE id = ?", (oid,)).fetchone()
        if row is None:
            raise LookupError(f"unknown order #{oid}")
        return {
            "order_id": row["id"],
            "customer_id": row["customer_id"],
            "status": row["status"],
            "carrier": row["carrier"],
            "tracking": row["tracking"],
            "eta": row["eta"],
            "total_usd": row["total_usd"],
            "items": json.loads(row["items"]),
            "placed_on": row["placed_on"],
        }

    def _customer_row(self, db: sqlite3.Connection, email: str) -> sqlite3.Row:
        address = _normalize_email(email)
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM customers WHERE email = ?", (address,)
        ).fetchone()
        if row is None:
            raise LookupError(f"no customer with email {address!r}")
        return row

    def get_customer(self, email: str) -> dict[str, Any]:
        """Profile of the customer with this email."""
        with self._read() as db:
            row = self._customer_row(db, email)
        return {
            "id": row["id"],
            "name": row["name"],
            "email": row["email"],
            "phone": row["phone"],
            "address": row["address"],
        }

    def get_payment_details(self, email: str) -> dict[str, Any]:
        """Card brand and last four digits on file for the customer with this email."""
        with self._read() as db:
            row = self._customer_row(db, email)
        return {"card_brand": row["card_brand"], "card_last4": row["card_last4"]}

    def search_kb(self, query: str, limit: int = 3) -> list[dict[str, Any]]:
        """Top ``limit`` KB articles by word overlap with ``query`` (title words count 3x)."""
        wanted = set(_terms(query))
        if not wanted or limit <= 0:
            return []
        with self._read() as db:
            rows = db.execute("SELECT id, title, body FROM kb ORDER BY id").fetchall()
        scored = []
        for row in rows:
            title, body = Counter(_terms(row["title"])), Counter(_terms(row["body"]))
            score = sum(3 * title[term] + body[term] for term in wanted)
            if score > 0:
                scored.append((score, row))
        scored.sort(key=lambda pair: (-pair[0], pair[1]["id"]))
        return [
            {"id": row["id"], "title": row["title"], "body": row["body"]}
            for _, row in scored[:limit]
        ]

    def count(self, table: str) -> int:
        """Number of rows in one of the known tables (for tests and the demo summary)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; expected one of {sorted(TABLES)}")
        with self._read() as db:
            row = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(row[0])

    # -- exactly-once side effects -------------------------------------------------------

    def issue_refund(
        self, order_id: str, amount_usd: float, reason: str, idempotency_key: str
    ) -> dict[str, Any]:
        """Refund ``amount_usd`` on an order, at most once per ``idempotency_key``."""
        oid = _normalize_order_id(order_id)
        key = _require_key(idempotency_key)
        amount = float(amount_usd)
        if not math.isfinite(amount) or amount <= 0:
            raise ValueError(f"refund amount must be a positive number, got {amount_usd!r}")
        amount = round(amount, 2)
        with self._tx() as db:
            prior = db.execute(
                "SELECT id, order_id, amount_usd FROM refunds WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if prior is not None:
                return {
                    "refund_id": prior["id"],
                    "order_id": prior["order_id"],
                    "amount_usd": prior["amount_usd"],
                    "status": "issued",
                    "duplicate": True,
                }
            order = db.execute("SELECT total_usd FROM orders WHERE id = ?", (oid,)).fetchone()
            if order is None:
                raise LookupError(f"unknown order #{oid}")
            total = float(order["total_usd"])
            if amount > total + 1e-9:
                raise ValueError(
                    f"refund of ${amount:.2f} exceeds the total of order #{oid} (${total:.2f})"
                )
            cursor = db.execute(
                "INSERT INTO refunds (order_id, amount_usd, reason, idempotency_key, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (oid, amount, str(reason), key, time.time()),
            )
            return {
                "refund_id": cursor.lastrowid,
                "order_id": oid,
                "amount_usd": amount,
                "status": "issued",
                "duplicate": False,
            }

    def reset_password(self, email: str, idempotency_key: str) -> dict[str, Any]:
        """Send a password-reset link, at most once per ``idempotency_key``."""
        key = _require_key(idempotency_key)
        with self._tx() as db:
            prior = db.execute(
                "SELECT email FROM password_resets WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if prior is not None:
                return {"email": prior["email"], "status": "reset_link_sent", "duplicate": True}
            address = self._customer_row(db, email)["email"]
            db.execute(
                "INSERT INTO password_resets (email, idempotency_key, created_at) VALUES (?, ?, ?)",
                (address, key, time.time()),
            )
            return {"email": address, "status": "reset_link_sent", "duplicate": False}

    def send_email(self, to: str, subject: str, body: str, idempotency_key: str) -> dict[str, Any]:
        """Send (record) an email, at most once per ``idempotency_key``."""
        key = _require_key(idempotency_key)
        address = _normalize_email(to)
        if "@" not in address:
            raise ValueError(f"not an email address: {to!r}")
        with self._tx() as db:
            prior = db.execute(
                "SELECT id, to_addr, subject FROM emails_sent WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if prior is not None:
                return {
                    "email_id": prior["id"],
                    "to": prior["to_addr"],
                    "subject": prior["subject"],
                    "status": "sent",
                    "duplicate": True,
                }
            cursor = db.execute(
                "INSERT INTO emails_sent (to_addr, subject, body, idempotency_key, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (address, str(subject), str(body), key, time.time()),
            )
            return {
                "email_id": cursor.lastrowid,
                "to": address,
                "subject": str(subject),
                "status": "sent",
                "duplicate": False,
            }

    def delete_customer_data(self, email: str, idempotency_key: str) -> dict[str, Any]:
        """Schedule erasure of a customer's data, at most once per ``idempotency_key``."""
        key = _require_key(idempotency_key)
        with self._tx() as db:
            prior = db.execute(
                "SELECT d.customer_id, c.email FROM deletions d"
                " JOIN customers c ON c.id = d.customer_id WHERE d.idempotency_key = ?",
                (key,),
            ).fetchone()
            if prior is not None:
                return {
                    "email": prior["email"],
                    "customer_id": prior["customer_id"],
                    "status": "deletion_scheduled",
                    "duplicate": True,
                }
            customer = self._customer_row(db, email)
            db.execute(
                "INSERT INTO deletions (customer_id, idempotency_key, created_at) VALUES (?, ?, ?)",
                (customer["id"], key, time.time()),
            )
            return {
                "email": customer["email"],
                "customer_id": customer["id"],
                "status": "deletion_scheduled",
                "duplicate": False,
            }
