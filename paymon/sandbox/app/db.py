"""The reference app's database: its subscriptions, usage and processed webhooks, in SQLite.

One database per app backend: in memory by default (`AppDB()`), or a file (`AppDB(path)`, a temp
file the sandbox picks when the world's `knobs.db` is "file"). The stdlib `sqlite3` module, one
connection shared by the app's threads behind a lock (the app is a stand-in, not a load test of
SQLite); every write is its own transaction.

Rows come back as plain dicts with the shape of `world["app"]["subscriptions"]` and `["usage"]`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id                    TEXT PRIMARY KEY,      -- LS's subscription id (a string), or pending-<user>
    user_id               TEXT,
    tier                  TEXT,
    status                TEXT,
    variant_id            INTEGER,
    subscription_item_id  INTEGER,
    is_usage_based        INTEGER,               -- 0/1, NULL unknown
    updated_at            TEXT                   -- LS's attributes.updated_at, ISO 8601
);
CREATE TABLE IF NOT EXISTS usage (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_item_id  INTEGER NOT NULL,
    quantity              INTEGER NOT NULL,
    at                    REAL NOT NULL,         -- epoch seconds (sandbox clock)
    reported              INTEGER NOT NULL DEFAULT 0  -- 1 once Lemon Squeezy accepted it
);
CREATE TABLE IF NOT EXISTS processed_webhooks (
    key                   TEXT PRIMARY KEY,      -- meta.webhook_id, else sha256:<body hash>
    event_name            TEXT,
    subscription_id       TEXT
);
"""

_SUBSCRIPTION_COLUMNS = ("id", "user_id", "tier", "status", "variant_id", "subscription_item_id",
                         "is_usage_based", "updated_at")


def _subscription(row: sqlite3.Row) -> dict:
    out = {key: row[key] for key in _SUBSCRIPTION_COLUMNS}
    if out["is_usage_based"] is not None:
        out["is_usage_based"] = bool(out["is_usage_based"])
    return out


class AppDB:
    def __init__(self, path: str | Path | None = None):
        self.path = str(path) if path else ":memory:"
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _execute(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # --- subscriptions -------------------------------------------------------------------------

    def upsert_subscription(self, row: dict) -> dict:
        values = {key: row.get(key) for key in _SUBSCRIPTION_COLUMNS}
        values["id"] = str(values["id"])
        if values["is_usage_based"] is not None:
            values["is_usage_based"] = int(bool(values["is_usage_based"]))
        columns = ", ".join(_SUBSCRIPTION_COLUMNS)
        marks = ", ".join("?" for _ in _SUBSCRIPTION_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _SUBSCRIPTION_COLUMNS if c != "id")
        self._execute(f"INSERT INTO subscriptions ({columns}) VALUES ({marks}) "
                      f"ON CONFLICT(id) DO UPDATE SET {updates}", tuple(values[c] for c in _SUBSCRIPTION_COLUMNS))
        return self.subscription(values["id"])

    def subscription(self, subscription_id: str) -> dict | None:
        rows = self._execute("SELECT * FROM subscriptions WHERE id = ?", (str(subscription_id),))
        return _subscription(rows[0]) if rows else None

    def subscriptions(self) -> list[dict]:
        return [_subscription(r) for r in self._execute("SELECT * FROM subscriptions ORDER BY rowid")]

    def pending_payg(self, user_id: str) -> dict | None:
        rows = self._execute("SELECT * FROM subscriptions WHERE user_id = ? AND tier = 'payg' AND status = 'pending' "
                             "ORDER BY rowid LIMIT 1", (user_id,))
        return _subscription(rows[0]) if rows else None

    # --- usage ---------------------------------------------------------------------------------

    def add_usage(self, subscription_item_id: int, quantity: int, at: float, reported: bool = False) -> dict:
        with self._lock:
            cursor = self._conn.execute("INSERT INTO usage (subscription_item_id, quantity, at, reported) "
                                        "VALUES (?, ?, ?, ?)", (int(subscription_item_id), int(quantity), float(at),
                                                                int(reported)))
            seq = cursor.lastrowid
        return {"seq": seq, "subscription_item_id": int(subscription_item_id), "quantity": int(quantity), "at": at}

    def mark_reported(self, seq: int) -> None:
        self._execute("UPDATE usage SET reported = 1 WHERE seq = ?", (seq,))

    def usage(self) -> list[dict]:
        return [{"subscription_item_id": r["subscription_item_id"], "quantity": r["quantity"], "at": r["at"]}
                for r in self._execute("SELECT * FROM usage ORDER BY seq")]

    def usage_totals(self) -> dict[int, int]:
        """Billable units per subscription item, as the app counts them (reported or not)."""
        return {r[0]: r[1] for r in self._execute(
            "SELECT subscription_item_id, SUM(quantity) FROM usage GROUP BY subscription_item_id")}

    # --- processed webhooks --------------------------------------------------------------------

    def processed(self, key: str) -> bool:
        return bool(self._execute("SELECT 1 FROM processed_webhooks WHERE key = ?", (key,)))

    def mark_processed(self, key: str, event_name: str | None, subscription_id: str | None) -> None:
        self._execute("INSERT OR IGNORE INTO processed_webhooks (key, event_name, subscription_id) VALUES (?, ?, ?)",
                      (key, event_name, subscription_id))

    def processed_webhooks(self) -> dict[str, dict]:
        return {r["key"]: {"event_name": r["event_name"], "subscription_id": r["subscription_id"]}
                for r in self._execute("SELECT * FROM processed_webhooks ORDER BY rowid")}

    def dump(self) -> str:
        """The whole database as JSON (for debugging a sandbox)."""
        return json.dumps({"subscriptions": self.subscriptions(), "usage": self.usage(),
                           "processed_webhooks": self.processed_webhooks()}, indent=2)
