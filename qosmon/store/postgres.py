"""The documents of several collectors in one PostgreSQL database: shows,
show summaries, on-screen events, stock states, incidents, the delivery
log, the platform's viewer-side aggregates, the ids of stored probe batches,
the alert outbox and rules state, and the show leases that decide which
collector diagnoses which show.

Time series stay in the time-series server (``qosmon.store.influx``); this
takes the place of its SQLite side store when the store URL says
``documents_env=VAR`` (the variable holds the libpq connection string, so
its password never sits in a config file or a log).

Through psycopg 3, one connection per calling thread (the collector's store
threads, the time-series writer), autocommit with an explicit transaction
where a call writes more than one statement. Lease times are the
database's clock, so the collectors' clocks need not agree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import psycopg

from qosmon.alerting.outbox import OutboxEntry
from qosmon.model import (
    AlertDelivery,
    Incident,
    OnScreen,
    Show,
    ShowSummary,
    StockState,
    ViewerAggregate,
)
from qosmon.store.base import StoreError

T = TypeVar("T")

OUTBOX_LOAD_MAX = 100_000
# Serialises schema creation when several collectors start at once.
_SCHEMA_LOCK = 0x716F736D6F6E  # "qosmon"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS qosmon_probe_batches (batch_id TEXT PRIMARY KEY);
-- The digest of a batch's samples, so a reused id with other content is a
-- conflict, not a retry (added after the first release: hence ALTER).
ALTER TABLE qosmon_probe_batches ADD COLUMN IF NOT EXISTS digest TEXT;
CREATE TABLE IF NOT EXISTS qosmon_shows (
    show_id TEXT PRIMARY KEY, start_ts DOUBLE PRECISION NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS qosmon_on_screen (
    show_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, sku TEXT NOT NULL,
    on_screen BOOLEAN NOT NULL, PRIMARY KEY (show_id, ts, sku, on_screen));
CREATE TABLE IF NOT EXISTS qosmon_stock_states (
    id BIGSERIAL PRIMARY KEY, show_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS qosmon_stock_states_show ON qosmon_stock_states (show_id, ts);
CREATE TABLE IF NOT EXISTS qosmon_incidents (
    incident_id TEXT PRIMARY KEY, show_id TEXT NOT NULL, start_ts DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS qosmon_incidents_show ON qosmon_incidents (show_id, start_ts);
CREATE TABLE IF NOT EXISTS qosmon_alert_deliveries (
    id BIGSERIAL PRIMARY KEY, show_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS qosmon_alert_deliveries_show ON qosmon_alert_deliveries (show_id, ts);
CREATE TABLE IF NOT EXISTS qosmon_outbox (
    delivery_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, show_id TEXT NOT NULL,
    state TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS qosmon_outbox_state ON qosmon_outbox (state, seq);
CREATE INDEX IF NOT EXISTS qosmon_outbox_show ON qosmon_outbox (show_id, seq);
CREATE TABLE IF NOT EXISTS qosmon_alert_state (show_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS qosmon_show_summaries (
    show_id TEXT PRIMARY KEY, start_ts DOUBLE PRECISION NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS qosmon_show_summaries_start ON qosmon_show_summaries (start_ts);
CREATE TABLE IF NOT EXISTS qosmon_viewer_aggregates (
    id BIGSERIAL PRIMARY KEY, show_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS qosmon_viewer_aggregates_show ON qosmon_viewer_aggregates (show_id, ts);
CREATE TABLE IF NOT EXISTS qosmon_show_leases (
    show_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL);
"""

_NOW = "extract(epoch from clock_timestamp())"


class PostgresDocuments:
    """The document side of the store in PostgreSQL."""

    def __init__(self, dsn: str, connect_timeout_s: float = 10.0,
                 read_only: bool = False) -> None:
        """``read_only``: for commands that only read; the tables are not
        created, only the connection is checked."""
        self._dsn = dsn
        self._timeout = max(1, round(connect_timeout_s))
        self._local = threading.local()
        self._conns: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False

        def schema(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(_SCHEMA)

        if read_only:
            self._run(lambda conn: conn.execute("SELECT 1"))
        else:
            self._run(schema)

    # --- plumbing ------------------------------------------------------------
    def _conn(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise StoreError("store is closed")
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _run(self, op: Callable[[psycopg.Connection[Any]], T]) -> T:
        try:
            return op(self._conn())
        except psycopg.Error as exc:
            conn = getattr(self._local, "conn", None)
            if conn is not None and (conn.broken or conn.closed):
                self._local.conn = None  # reconnect on the next call
            # psycopg's messages name the server, never the password.
            raise StoreError(f"PostgreSQL: {exc}".strip()) from exc

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(lambda conn: conn.execute(sql, params).fetchall())

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return

        def op(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows)

        self._run(op)

    # --- probe batch ids (the time-series store dedups by them) -------------
    def has_batch(self, batch_id: str) -> bool:
        return self.batch_record(batch_id)[0]

    def batch_record(self, batch_id: str) -> tuple[bool, str | None]:
        """Whether ``batch_id`` was recorded, and the digest of its samples."""
        rows = self._rows("SELECT digest FROM qosmon_probe_batches WHERE batch_id = %s",
                          (batch_id,))
        return (True, rows[0][0]) if rows else (False, None)

    def submit_probe_batch(
        self, batch_id: str, samples: Sequence[Any], digest: str | None = None
    ) -> Future[bool]:
        """Record a batch id and its samples' digest (the samples live in the
        time-series server); the future is already done when this returns."""
        fut: Future[bool] = Future()
        try:
            rows = self._rows("INSERT INTO qosmon_probe_batches (batch_id, digest) "
                              "VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING batch_id",
                              (batch_id, digest))
        except StoreError as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(bool(rows))
        return fut

    # --- documents -----------------------------------------------------------
    def write_stock_states(self, states: Sequence[StockState]) -> None:
        self._many("INSERT INTO qosmon_stock_states (show_id, ts, body) VALUES (%s, %s, %s)",
                   [(s.show_id, s.ts, s.model_dump_json()) for s in states])

    def put_show(self, show: Show) -> None:
        self._many("INSERT INTO qosmon_shows (show_id, start_ts, body) VALUES (%s, %s, %s) "
                   "ON CONFLICT (show_id) DO UPDATE SET start_ts = EXCLUDED.start_ts, "
                   "body = EXCLUDED.body", [(show.show_id, show.start_ts, show.model_dump_json())])

    def write_on_screen(self, events: Sequence[OnScreen]) -> None:
        self._many("INSERT INTO qosmon_on_screen (show_id, ts, sku, on_screen) "
                   "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                   [(e.show_id, e.ts, e.sku, e.on) for e in events])

    def put_incidents(self, show_id: str, incidents: Sequence[Incident]) -> None:
        self._many("INSERT INTO qosmon_incidents (incident_id, show_id, start_ts, body) "
                   "VALUES (%s, %s, %s, %s) ON CONFLICT (incident_id) DO UPDATE SET "
                   "start_ts = EXCLUDED.start_ts, body = EXCLUDED.body",
                   [(i.incident_id, show_id, i.start_ts, i.model_dump_json())
                    for i in incidents])

    def write_alert_deliveries(self, show_id: str, deliveries: Sequence[AlertDelivery]) -> None:
        self._many("INSERT INTO qosmon_alert_deliveries (show_id, ts, body) VALUES (%s, %s, %s)",
                   [(show_id, d.ts, d.model_dump_json()) for d in deliveries])

    def write_viewer_aggregates(self, samples: Sequence[ViewerAggregate]) -> None:
        self._many("INSERT INTO qosmon_viewer_aggregates (show_id, ts, body) VALUES (%s, %s, %s)",
                   [(s.show_id, s.ts, s.model_dump_json()) for s in samples])

    def put_show_summary(self, summary: ShowSummary) -> None:
        self._many("INSERT INTO qosmon_show_summaries (show_id, start_ts, body) "
                   "VALUES (%s, %s, %s) ON CONFLICT (show_id) DO UPDATE SET "
                   "start_ts = EXCLUDED.start_ts, body = EXCLUDED.body",
                   [(summary.show_id, summary.start_ts, summary.model_dump_json())])

    def show_summaries(
        self, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[ShowSummary]:
        rows = self._rows(
            "SELECT body FROM qosmon_show_summaries WHERE (%s::float8 IS NULL OR start_ts >= %s) "
            "AND (%s::float8 IS NULL OR start_ts < %s) ORDER BY start_ts, show_id",
            (start_ts, start_ts, end_ts, end_ts))
        return [ShowSummary.model_validate_json(r[0]) for r in rows]

    def get_show(self, show_id: str) -> Show | None:
        rows = self._rows("SELECT body FROM qosmon_shows WHERE show_id = %s", (show_id,))
        return Show.model_validate_json(rows[0][0]) if rows else None

    def list_shows(self) -> list[Show]:
        rows = self._rows("SELECT body FROM qosmon_shows ORDER BY start_ts, show_id")
        return [Show.model_validate_json(r[0]) for r in rows]

    def stock_states(self, show_id: str) -> list[StockState]:
        rows = self._rows("SELECT body FROM qosmon_stock_states WHERE show_id = %s "
                          "ORDER BY ts, id", (show_id,))
        return [StockState.model_validate_json(r[0]) for r in rows]

    def on_screen(self, show_id: str) -> list[OnScreen]:
        rows = self._rows("SELECT ts, sku, on_screen FROM qosmon_on_screen WHERE show_id = %s "
                          "ORDER BY ts, sku", (show_id,))
        return [OnScreen(show_id=show_id, ts=ts, sku=sku, on=on) for ts, sku, on in rows]

    def incidents(self, show_id: str) -> list[Incident]:
        rows = self._rows("SELECT body FROM qosmon_incidents WHERE show_id = %s "
                          "ORDER BY start_ts, incident_id", (show_id,))
        return [Incident.model_validate_json(r[0]) for r in rows]

    def alert_deliveries(self, show_id: str) -> list[AlertDelivery]:
        rows = self._rows("SELECT body FROM qosmon_alert_deliveries WHERE show_id = %s "
                          "ORDER BY ts, id", (show_id,))
        return [AlertDelivery.model_validate_json(r[0]) for r in rows]

    def viewer_aggregates(
        self, show_id: str, start: float | None = None, end: float | None = None
    ) -> list[ViewerAggregate]:
        rows = self._rows(
            "SELECT body FROM qosmon_viewer_aggregates WHERE show_id = %s "
            "AND (%s::float8 IS NULL OR ts >= %s) AND (%s::float8 IS NULL OR ts <= %s) "
            "ORDER BY ts, id", (show_id, start, start, end, end))
        return [ViewerAggregate.model_validate_json(r[0]) for r in rows]

    # --- alert outbox (qosmon.alerting.outbox.Outbox) --------------------------
    def outbox_add(
        self, new: Sequence[OutboxEntry], changed: Sequence[OutboxEntry],
        alert_state: tuple[str, str | None] | None,
    ) -> None:
        rows = [(e.delivery_id, e.seq, e.show_id, e.state.value, e.model_dump_json())
                for e in (*new, *changed)]

        def op(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                if rows:
                    cur.executemany(
                        "INSERT INTO qosmon_outbox (delivery_id, seq, show_id, state, body) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (delivery_id) DO UPDATE SET "
                        "state = EXCLUDED.state, body = EXCLUDED.body", rows)
                if alert_state is not None:
                    show_id, body = alert_state
                    if body is None:
                        cur.execute("DELETE FROM qosmon_alert_state WHERE show_id = %s",
                                    (show_id,))
                    else:
                        cur.execute("INSERT INTO qosmon_alert_state (show_id, body) "
                                    "VALUES (%s, %s) ON CONFLICT (show_id) DO UPDATE SET "
                                    "body = EXCLUDED.body", (show_id, body))

        self._run(op)

    def outbox_update(self, entries: Sequence[OutboxEntry]) -> None:
        self._many("UPDATE qosmon_outbox SET state = %s, body = %s WHERE delivery_id = %s",
                   [(e.state.value, e.model_dump_json(), e.delivery_id) for e in entries])

    def outbox_load(
        self, show_ids: Sequence[str] | None = None
    ) -> tuple[list[OutboxEntry], dict[str, str]]:
        only = "" if show_ids is None else " AND show_id = ANY(%s)"
        extra: tuple[Any, ...] = () if show_ids is None else (list(show_ids),)
        rows = self._rows(
            "SELECT body FROM qosmon_outbox WHERE (state = 'pending' OR show_id IN "
            f"(SELECT show_id FROM qosmon_alert_state)){only} ORDER BY seq LIMIT %s",
            (*extra, OUTBOX_LOAD_MAX))
        states = self._rows(f"SELECT show_id, body FROM qosmon_alert_state WHERE TRUE{only}",
                            extra)
        return ([OutboxEntry.model_validate_json(r[0]) for r in rows],
                {show_id: body for show_id, body in states})

    def outbox_entries(self, show_id: str) -> list[OutboxEntry]:
        rows = self._rows("SELECT body FROM qosmon_outbox WHERE show_id = %s ORDER BY seq",
                          (show_id,))
        return [OutboxEntry.model_validate_json(r[0]) for r in rows]

    # --- show leases (qosmon.store.base.LeasesShows) ----------------------------
    def acquire_lease(self, show_id: str, owner: str, ttl_s: float) -> bool:
        rows = self._rows(
            "INSERT INTO qosmon_show_leases (show_id, owner, expires_at) "
            f"VALUES (%s, %s, {_NOW} + %s) ON CONFLICT (show_id) DO UPDATE SET "
            "owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at "
            "WHERE qosmon_show_leases.owner = EXCLUDED.owner "
            f"OR qosmon_show_leases.expires_at < {_NOW} RETURNING owner",
            (show_id, owner, ttl_s))
        return bool(rows)

    def release_lease(self, show_id: str, owner: str) -> None:
        self._rows("DELETE FROM qosmon_show_leases WHERE show_id = %s AND owner = %s "
                   "RETURNING show_id", (show_id, owner))

    def lease_holders(self) -> dict[str, str]:
        rows = self._rows(f"SELECT show_id, owner FROM qosmon_show_leases "
                          f"WHERE expires_at >= {_NOW}")
        return {show_id: owner for show_id, owner in rows}

    def expired_leases(self) -> list[str]:
        rows = self._rows(f"SELECT show_id FROM qosmon_show_leases WHERE expires_at < {_NOW} "
                          "LIMIT 1000")
        return [r[0] for r in rows]

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
