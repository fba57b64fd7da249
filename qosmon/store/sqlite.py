"""The embedded store: one SQLite file in WAL mode, zero setup.

Durability: every write returns only after its transaction has committed.
The default ``synchronous=FULL`` fsyncs the WAL on each commit, so an
acknowledged batch survives a power loss, not only a process crash (with
``synchronous=NORMAL`` it survives a crash of the process but the last commits
may be lost on power loss). fsync is cheap next to request handling, and
group commit (below) shares one fsync among all writes that queued up while
the previous commit ran.

All writes go through one writer thread. Callers (the collector's event
loop or worker threads, a CLI) hand it an operation and wait for its result;
the writer drains whatever is queued, runs each operation inside its own
SAVEPOINT (so one failing operation does not take the others down) and
commits them together. Probe batches, the bulk of the traffic, are written
together in a few multi-row statements; only if that fails is each written
alone to find the one at fault. Reads use one connection per reading thread; WAL lets them run
while the writer writes.

Faults: whatever goes wrong inside a group (a full disk, an I/O error, a
bug in an operation, a rollback that itself fails) fails that group's
futures with ``StoreError`` and the writer goes on with the next group; it
never dies and leaves later writes waiting. No call waits forever either:
a write not done within ``timeout_s`` raises ``StoreError`` (and is taken
off the queue if it had not started), a read running longer is interrupted.
``health()`` says whether the writer is alive, keeping up and committing.

A probe batch id is stored with a digest of its samples, so the same id
arriving with other content is told apart from a retry
(``BatchConflictError``) instead of being dropped as a duplicate.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import itertools
import json
import logging
import math
import operator
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from qosmon.alerting.outbox import OutboxEntry
from qosmon.model import (
    AlertDelivery,
    BusinessSample,
    Incident,
    OnScreen,
    ProbeSample,
    Show,
    ShowSummary,
    StockRecord,
    StockState,
    ViewerAggregate,
)
from qosmon.store.base import BatchConflictError, SeriesRead, StoreError, StoreHealth

log = logging.getLogger(__name__)

T = TypeVar("T")

SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")

# Column order of the probe_samples table = field order of ProbeSample.
SAMPLE_COLUMNS: tuple[str, ...] = tuple(ProbeSample.model_fields)
BUSINESS_COLUMNS: tuple[str, ...] = tuple(BusinessSample.model_fields)
STOCK_COLUMNS: tuple[str, ...] = tuple(StockRecord.model_fields)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS probe_batches (
    batch_id TEXT PRIMARY KEY,
    n_samples INTEGER NOT NULL,
    digest TEXT,
    stored_ts REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS probe_samples ({", ".join(SAMPLE_COLUMNS)});
CREATE INDEX IF NOT EXISTS probe_samples_show_ts ON probe_samples (show_id, ts);
-- Per-minute aggregates of probe samples that retention has pruned.
CREATE TABLE IF NOT EXISTS probe_minutes (
    show_id TEXT NOT NULL, stream_id TEXT NOT NULL, probe_id TEXT NOT NULL,
    region TEXT NOT NULL, isp TEXT NOT NULL, edge_node TEXT NOT NULL,
    minute INTEGER NOT NULL, n INTEGER NOT NULL, state TEXT NOT NULL,
    ttff_ms REAL, rtt_ms REAL, packets_expected INTEGER, packets_received INTEGER,
    loss_pct REAL, residual_loss_pct REAL, jitter_ms REAL, bitrate_kbps REAL, fps REAL,
    width INTEGER, height INTEGER, freeze_count INTEGER, freeze_ms REAL,
    pause_count INTEGER, pause_ms REAL, no_frame_ms REAL, chat_sent INTEGER,
    chat_lost INTEGER, chat_rtt_ms REAL, error TEXT, received_ts REAL,
    probe_lag_ms REAL, socket_drops INTEGER, stuck_ms REAL, received_kbps REAL,
    rtx_kbps REAL, audio_loss_pct REAL, audio_stalled_ms REAL
);
CREATE INDEX IF NOT EXISTS probe_minutes_show ON probe_minutes (show_id, minute);
-- A business sample is the platform's figure for one interval of one
-- show/region/SKU: a retried push or a re-import replaces, never adds.
CREATE TABLE IF NOT EXISTS business (
    {", ".join(BUSINESS_COLUMNS)},
    PRIMARY KEY (show_id, ts, region, sku)
) WITHOUT ROWID;
-- Likewise one warehouse figure per SKU per warehouse timestamp.
CREATE TABLE IF NOT EXISTS stock (
    {", ".join(STOCK_COLUMNS)},
    PRIMARY KEY (warehouse, sku, source_ts)
);
CREATE INDEX IF NOT EXISTS stock_ts ON stock (ts);
CREATE TABLE IF NOT EXISTS stock_states (
    show_id TEXT NOT NULL, ts REAL NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stock_states_show ON stock_states (show_id, ts);
CREATE TABLE IF NOT EXISTS viewer_aggregates (
    show_id TEXT NOT NULL, ts REAL NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS viewer_aggregates_show ON viewer_aggregates (show_id, ts);
CREATE TABLE IF NOT EXISTS shows (
    show_id TEXT PRIMARY KEY, start_ts REAL NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS on_screen (
    show_id TEXT NOT NULL, ts REAL NOT NULL, sku TEXT NOT NULL, "on" INTEGER NOT NULL,
    PRIMARY KEY (show_id, ts, sku, "on")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS incidents (
    incident_id TEXT PRIMARY KEY, show_id TEXT NOT NULL, start_ts REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_show ON incidents (show_id, start_ts);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    show_id TEXT NOT NULL, ts REAL NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_deliveries_show ON alert_deliveries (show_id, ts);
CREATE TABLE IF NOT EXISTS show_summaries (
    show_id TEXT PRIMARY KEY, start_ts REAL NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS show_summaries_start ON show_summaries (start_ts);
"""
# Each table's definition: name -> "(columns...)[ WITHOUT ROWID]".
_TABLES: dict[str, str] = dict(re.findall(
    r"CREATE TABLE IF NOT EXISTS (\w+) (\(.*?\)(?: WITHOUT ROWID)?);", _SCHEMA, re.S))

# The alert outbox (``qosmon.alerting.outbox``) and the alert rules' state per
# show: documents, updated by id. ``body`` is the entry's JSON; ``state`` and
# ``seq`` are copied out of it for the queries.
_OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    delivery_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, show_id TEXT NOT NULL,
    state TEXT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, seq);
CREATE INDEX IF NOT EXISTS outbox_show ON outbox (show_id, seq);
CREATE TABLE IF NOT EXISTS alert_state (
    show_id TEXT PRIMARY KEY, body TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS show_leases (
    show_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
"""
# A starting collector loads at most this many outbox entries of live shows.
OUTBOX_LOAD_MAX = 100_000

# Samples go in as multi-row INSERTs of power-of-two sizes (a batch of 100 is
# 64 + 32 + 4 rows: three statements, each cached once prepared). The sqlite3
# module releases the GIL around every step, and getting it back while the
# event loop is busy costs far more than the insert: executemany steps once a
# row, so under load the writer crawled (measured: 3.4x fewer batches/s than
# multi-row with a busy main thread). 256 rows x 31 columns stays well under
# SQLite's 32766 bound variables.
_SAMPLE_CHUNK_MAX = 256
_SAMPLE_ROW_SQL = f"({', '.join('?' * len(SAMPLE_COLUMNS))})"
_INSERT_SAMPLES: dict[int, str] = {
    n: f"INSERT INTO probe_samples ({', '.join(SAMPLE_COLUMNS)}) VALUES "
    + ", ".join([_SAMPLE_ROW_SQL] * n)
    for n in (1 << k for k in range(_SAMPLE_CHUNK_MAX.bit_length()))
}
_INSERT_BUSINESS = (
    f"INSERT OR REPLACE INTO business ({', '.join(BUSINESS_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(BUSINESS_COLUMNS))})"
)
_INSERT_STOCK = (
    f"INSERT OR REPLACE INTO stock ({', '.join(STOCK_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(STOCK_COLUMNS))})"
)

# How the minute aggregate of each sample column is formed: counters add
# up, levels are averaged, "time since last frame" keeps its worst value.
_MINUTE_AGGREGATES: dict[str, str] = {
    "ttff_ms": "max", "rtt_ms": "avg", "packets_expected": "sum",
    "packets_received": "sum", "loss_pct": "avg", "residual_loss_pct": "avg",
    "jitter_ms": "avg", "bitrate_kbps": "avg", "fps": "avg", "width": "max",
    "height": "max", "freeze_count": "sum", "freeze_ms": "sum", "pause_count": "sum",
    "pause_ms": "sum", "no_frame_ms": "max", "chat_sent": "sum", "chat_lost": "sum",
    "chat_rtt_ms": "avg", "error": "max", "received_ts": "max",
    # The probe's own health: its worst lateness and every drop of the
    # minute, so a minute it was starved in still says so once pruned.
    "probe_lag_ms": "max", "socket_drops": "sum",
    # What the report reads of a pruned show besides: the stuck picture
    # counted while it lasted (the report's frozen time), the rate as the
    # browser counts it and its repaired part, and audio.
    "stuck_ms": "sum", "received_kbps": "avg", "rtx_kbps": "avg",
    "audio_loss_pct": "avg", "audio_stalled_ms": "sum",
}
# Minute columns added since the table was first made (older files lack them).
_MINUTE_COLUMNS_ADDED = (
    ("probe_lag_ms", "REAL"), ("socket_drops", "INTEGER"), ("stuck_ms", "REAL"),
    ("received_kbps", "REAL"), ("rtx_kbps", "REAL"), ("audio_loss_pct", "REAL"),
    ("audio_stalled_ms", "REAL"),
)


_sample_values = operator.itemgetter(*SAMPLE_COLUMNS)


def sample_row(s: ProbeSample) -> tuple[Any, ...]:
    # itemgetter runs in C: this is on the ingest hot path.
    return _sample_values(s.__dict__)


def insert_sample_rows(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert sample rows (``sample_row`` tuples) with few statement steps."""
    ncol = len(SAMPLE_COLUMNS)
    flat = list(itertools.chain.from_iterable(rows))
    start = 0
    left = len(rows)
    while left:
        n = min(_SAMPLE_CHUNK_MAX, 1 << (left.bit_length() - 1))
        conn.execute(_INSERT_SAMPLES[n], flat[start * ncol:(start + n) * ncol])
        start += n
        left -= n


_SAMPLE_TS = operator.itemgetter("ts")
_SAMPLE_KEY = operator.itemgetter("show_id", "stream_id", "state")


def batch_digest(samples: Sequence[ProbeSample]) -> str:
    """What a probe batch says, as a short hash: the same batch sent again
    (a retry) has the same digest; a reused id with other samples almost
    never does. It covers each sample's time, show, stream and state, not
    every measurement: the whole row cost 6 us a sample on the ingest path,
    this a few tenths (C loops only)."""
    dicts = [s.__dict__ for s in samples]
    h = hashlib.sha256(array.array("d", map(_SAMPLE_TS, dicts)).tobytes())
    h.update("\x1f".join(itertools.chain.from_iterable(map(_SAMPLE_KEY, dicts))).encode())
    return h.hexdigest()[:32]


@dataclass(slots=True)
class _ProbeBatchWrite:
    batch_id: str
    samples: Sequence[ProbeSample]
    digest: str | None = None
    # Set by the writer: when the batch was stored.
    ts: float = field(default=0.0, compare=False)

    def content_digest(self) -> str:
        # Computed on the writer thread, not on the caller's event loop.
        if self.digest is None:
            self.digest = batch_digest(self.samples)
        return self.digest

    def run(self, conn: sqlite3.Connection) -> bool:
        """This batch alone (the writer's fallback when a group fails)."""
        stored = _write_probe_batches(conn, [self], isolated=False)
        assert stored is not None
        outcome = stored[0]
        if isinstance(outcome, BatchConflictError):
            raise outcome
        return outcome


_Queued = tuple[Callable[[sqlite3.Connection], Any] | _ProbeBatchWrite, Future[Any]]

_KNOWN_BATCHES = (
    "SELECT batch_id, digest FROM probe_batches "
    "WHERE batch_id IN (SELECT value FROM json_each(?))"
)
_INSERT_BATCHES = (
    "INSERT INTO probe_batches (batch_id, n_samples, digest, stored_ts) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?)"
)


def _conflict(batch_id: str) -> BatchConflictError:
    return BatchConflictError(
        f"batch id {batch_id.partition('/')[2] or batch_id!r} was stored before with other "
        "content; a new batch needs a new batch_id"
    )


def _write_probe_batches(
    conn: sqlite3.Connection, writes: Sequence[_ProbeBatchWrite], isolated: bool = True
) -> list[bool | BatchConflictError] | None:
    """Store the batches not stored before, all in a handful of statements
    (see ``_SAMPLE_CHUNK_MAX`` for why few). Returns, per write, whether it
    was stored (False: a duplicate, also of an earlier write in ``writes``;
    ``BatchConflictError``: the id was stored with other content).

    ``isolated``: inside a savepoint; on any failure, roll it back and
    return None (the caller then writes each batch alone to find the bad
    one). Otherwise failures raise."""
    if isolated:
        conn.execute("SAVEPOINT batches")
    try:
        ids = json.dumps([w.batch_id for w in writes], ensure_ascii=False)
        known: dict[str, str | None] = dict(conn.execute(_KNOWN_BATCHES, (ids,)).fetchall())
        stored: list[bool | BatchConflictError] = []
        fresh: list[tuple[str, int, str, float]] = []
        rows: list[tuple[Any, ...]] = []
        now = time.time()
        for w in writes:
            digest = w.content_digest()
            if w.batch_id in known:
                before = known[w.batch_id]
                # No digest: stored before digests were kept; a retry then.
                same = before is None or before == digest
                stored.append(False if same else _conflict(w.batch_id))
                continue
            stored.append(True)
            known[w.batch_id] = digest
            fresh.append((w.batch_id, len(w.samples), digest, now))
            rows += map(sample_row, w.samples)
        if fresh:
            conn.execute(_INSERT_BATCHES, (json.dumps(fresh, ensure_ascii=False),))
            insert_sample_rows(conn, rows)
    except Exception as exc:
        if not isolated:
            raise
        _rollback_to(conn, "batches", exc)
        return None
    if isolated:
        conn.execute("RELEASE batches")
    return stored


def _rollback_to(conn: sqlite3.Connection, savepoint: str, cause: BaseException) -> None:
    """Undo a savepoint. Some errors (a full disk, an I/O error) make SQLite
    roll the whole transaction back by itself, and then the savepoint is
    gone: that raises here, naming ``cause``, and the writer's guard fails
    the whole group."""
    if not conn.in_transaction:
        raise StoreError(f"{cause} (the whole transaction was rolled back)") from cause
    conn.execute(f"ROLLBACK TO {savepoint}")
    conn.execute(f"RELEASE {savepoint}")


def _where(*conditions: tuple[str, Any]) -> tuple[list[str], list[Any]]:
    """The SQL conditions whose value is given (None: no condition), and their
    parameters; always at least one condition so ``AND``-joining is valid."""
    given = [(clause, value) for clause, value in conditions if value is not None]
    return [c for c, _ in given] or ["1"], [v for _, v in given]


def _row_dict(columns: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    return {c: v for c, v in zip(columns, row, strict=True) if v is not None}


DEFAULT_TIMEOUT_S = 30.0
# A read checks its deadline every this many SQLite VM steps (a few ms).
_PROGRESS_STEPS = 20_000


class SqliteStore:
    """The ``Store`` interface on one SQLite database file. ``read_only``:
    the file must exist and is neither created, migrated nor written."""

    def __init__(
        self,
        path: str | Path,
        synchronous: str = "FULL",
        group_max: int = 256,
        read_only: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, not {synchronous!r}"
            )
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.read_only = read_only
        self._synchronous = synchronous
        self._group_max = group_max
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._closed = False
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # Health, written by the writer thread only.
        self._busy_since: float | None = None
        self._failed_groups = 0
        self._last_error: str | None = None
        self._last_error_ts: float | None = None
        self._last_ok = True
        self._writer: threading.Thread | None = None
        try:
            if read_only:
                # Reading the catalogue proves it is a database we can read.
                self._read("SELECT count(*) FROM sqlite_master")
                return
            self._wconn = self._connect()
            self._wconn.executescript(_SCHEMA)
            self._wconn.executescript(_OUTBOX_SCHEMA)
            self._migrate(self._wconn)
        except (sqlite3.Error, StoreError) as exc:
            self.close()
            raise StoreError(f"{self.path}: cannot open SQLite store: {exc}") from exc
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._writer.start()

    # --- plumbing ----------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                check_same_thread=False, timeout=self.timeout_s,
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            # A store written by an older qosmon lacks the tables added
            # since; read-only they cannot be added to the file, so each
            # missing one is an empty table in this connection's memory.
            present = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            for name, body in _TABLES.items():
                if name not in present:
                    conn.execute(f"CREATE TEMP TABLE {name} {body}")
            return conn
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.timeout_s
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Bring a file made by an older version up to this schema."""
        # Sample fields added since (all have defaults): add them, keeping rows.
        have = {r[1] for r in conn.execute("PRAGMA table_info(probe_samples)")}
        for column in SAMPLE_COLUMNS:
            if column not in have:
                conn.execute(f"ALTER TABLE probe_samples ADD COLUMN {column}")
        have = {r[1] for r in conn.execute("PRAGMA table_info(probe_minutes)")}
        for column, decl in _MINUTE_COLUMNS_ADDED:
            if column not in have:
                conn.execute(f"ALTER TABLE probe_minutes ADD COLUMN {column} {decl}")
        cols = {row[1] for row in conn.execute("PRAGMA table_info(probe_batches)")}
        for col, decl in (("digest", "TEXT"), ("stored_ts", "REAL")):
            if col not in cols:
                conn.execute(f"ALTER TABLE probe_batches ADD COLUMN {col} {decl}")
                if col == "stored_ts":
                    # Older ids count as stored now, so retention keeps them
                    # for the usual time.
                    conn.execute("UPDATE probe_batches SET stored_ts = ?", (time.time(),))
        conn.execute(
            "CREATE INDEX IF NOT EXISTS probe_batches_ts ON probe_batches (stored_ts)"
        )

    def _submit(self, op: Callable[[sqlite3.Connection], T] | _ProbeBatchWrite) -> Future[T]:
        if self._closed:
            raise StoreError("store is closed")
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only, cannot write")
        if self._writer is None or not self._writer.is_alive():
            raise StoreError("store writer is not running")
        fut: Future[T] = Future()
        self._queue.put((op, fut))
        return fut

    def _wait(self, fut: Future[T]) -> T:
        try:
            return fut.result(timeout=self.timeout_s)
        except FutureTimeout:
            # Not started yet: it never will be. Started: it may still
            # commit, which a retry of an idempotent write tolerates.
            taken_back = fut.cancel()
            raise StoreError(
                f"store write timed out after {self.timeout_s:g} s "
                + ("(not written)" if taken_back else "(it may still complete)")
            ) from None

    def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return self._wait(self._submit(op))

    def health(self) -> StoreHealth:
        busy_since = self._busy_since
        busy_s = time.monotonic() - busy_since if busy_since is not None else 0.0
        alive = self._closed or self.read_only or (
            self._writer is not None and self._writer.is_alive())
        return StoreHealth(
            ok=alive and self._last_ok and busy_s <= self.timeout_s,
            writer_alive=alive,
            queued=self._queue.qsize(),
            busy_s=busy_s,
            failed_groups=self._failed_groups,
            last_error=self._last_error,
            last_error_ts=self._last_error_ts,
        )

    def _write_loop(self) -> None:
        conn = self._wconn
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < self._group_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            # A caller that gave up (timeout, cancelled request) is not
            # written for: it has been told it was not.
            group = [(op, fut) for op, fut in group if fut.set_running_or_notify_cancel()]
            if not group:
                continue
            self._busy_since = time.monotonic()
            try:
                self._run_group(conn, group)
            except BaseException as exc:  # the guard: fail this group, keep the writer
                self._group_failed(conn, group, exc)
            finally:
                self._busy_since = None
        conn.close()

    def _group_failed(
        self, conn: sqlite3.Connection, group: list[_Queued], exc: BaseException
    ) -> None:
        log.error("store writer: a group of %d writes failed and was rolled back: %s",
                  len(group), exc, exc_info=not isinstance(exc, sqlite3.Error | StoreError))
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        self._note_error(f"write failed: {exc}")
        error = StoreError(f"write failed, nothing of it stored: {exc}")
        for _, fut in group:
            if not fut.done():
                fut.set_exception(error)

    def _note_error(self, text: str) -> None:
        self._failed_groups += 1
        self._last_error = text[:300]
        self._last_error_ts = time.time()
        self._last_ok = False

    def _run_group(self, conn: sqlite3.Connection, group: list[_Queued]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._note_error(f"cannot begin transaction: {exc}")
            for _, fut in group:
                fut.set_exception(StoreError(f"cannot begin transaction: {exc}"))
            return
        batches = [(w, fut) for w, fut in group if isinstance(w, _ProbeBatchWrite)]
        ops: list[tuple[Callable[[sqlite3.Connection], Any], Future[Any]]] = [
            (op, fut) for op, fut in group if not isinstance(op, _ProbeBatchWrite)
        ]
        if batches:
            stored = _write_probe_batches(conn, [w for w, _ in batches])
            if stored is None:
                # One of them cannot be stored: find which, each on its own.
                ops[:0] = [(w.run, fut) for w, fut in batches]
            else:
                for (_, fut), ok in zip(batches, stored, strict=True):
                    if isinstance(ok, BatchConflictError):
                        outcomes.append((fut, None, ok))
                    else:
                        outcomes.append((fut, ok, None))
        for op, fut in ops:
            conn.execute("SAVEPOINT op")
            try:
                result = op(conn)
            except BatchConflictError as exc:
                _rollback_to(conn, "op", exc)
                outcomes.append((fut, None, exc))
            except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
                _rollback_to(conn, "op", exc)
                outcomes.append((fut, None, StoreError(f"write failed: {exc}")))
            except Exception as exc:  # a bug: report it to the caller, keep the writer
                _rollback_to(conn, "op", exc)
                outcomes.append((fut, None, exc))
            else:
                conn.execute("RELEASE op")
                outcomes.append((fut, result, None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._note_error(f"commit failed: {exc}")
            for fut, _, _ in outcomes:
                fut.set_exception(StoreError(f"commit failed: {exc}"))
            return
        self._last_ok = True
        for fut, result, error in outcomes:
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(error)

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = self._reader()
        deadline = time.monotonic() + self.timeout_s
        # Returning true from the progress handler interrupts the query.
        conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if time.monotonic() > deadline:
                raise StoreError(f"read timed out after {self.timeout_s:g} s") from None
            raise StoreError(f"read failed: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"read failed: {exc}") from exc
        finally:
            conn.set_progress_handler(None, 0)

    # --- writes -------------------------------------------------------------
    def write_probe_batch(self, batch_id: str, samples: Sequence[ProbeSample]) -> bool:
        return self._wait(self.submit_probe_batch(batch_id, samples))

    def submit_probe_batch(
        self, batch_id: str, samples: Sequence[ProbeSample], digest: str | None = None
    ) -> Future[bool]:
        """``write_probe_batch`` without waiting: the future's result comes
        once the batch is committed (or known as a duplicate). An event loop
        can await it directly, with no worker thread in between: each thread
        hop is another wait for the GIL under load. The future fails with
        ``BatchConflictError`` if the id was stored with other samples; the
        caller bounds its own wait (``timeout_s`` is the store's own).
        ``digest``: the samples' ``batch_digest`` when ``samples`` is not
        what was sent (a side store recording batches kept elsewhere)."""
        return self._submit(_ProbeBatchWrite(batch_id, samples, digest))

    def write_business(self, samples: Sequence[BusinessSample]) -> None:
        rows = [tuple(s.__dict__[c] for c in BUSINESS_COLUMNS) for s in samples]
        self._write(lambda conn: conn.executemany(_INSERT_BUSINESS, rows))

    def write_stock(self, records: Sequence[StockRecord]) -> None:
        rows = [tuple(r.__dict__[c] for c in STOCK_COLUMNS) for r in records]
        self._write(lambda conn: conn.executemany(_INSERT_STOCK, rows))

    def write_stock_states(self, states: Sequence[StockState]) -> None:
        rows = [(s.show_id, s.ts, s.model_dump_json()) for s in states]
        self._write(
            lambda conn: conn.executemany(
                "INSERT INTO stock_states (show_id, ts, body) VALUES (?, ?, ?)", rows
            )
        )

    def write_viewer_aggregates(self, samples: Sequence[ViewerAggregate]) -> None:
        rows = [(s.show_id, s.ts, s.model_dump_json()) for s in samples]
        self._write(
            lambda conn: conn.executemany(
                "INSERT INTO viewer_aggregates (show_id, ts, body) VALUES (?, ?, ?)", rows
            )
        )

    def put_show(self, show: Show) -> None:
        row = (show.show_id, show.start_ts, show.model_dump_json())
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO shows (show_id, start_ts, body) VALUES (?, ?, ?)", row
            )
        )

    def write_on_screen(self, events: Sequence[OnScreen]) -> None:
        rows = [(e.show_id, e.ts, e.sku, int(e.on)) for e in events]
        self._write(
            lambda conn: conn.executemany(
                'INSERT OR IGNORE INTO on_screen (show_id, ts, sku, "on") VALUES (?, ?, ?, ?)',
                rows,
            )
        )

    def put_incidents(self, show_id: str, incidents: Sequence[Incident]) -> None:
        rows = [(i.incident_id, show_id, i.start_ts, i.model_dump_json()) for i in incidents]
        self._write(
            lambda conn: conn.executemany(
                "INSERT OR REPLACE INTO incidents (incident_id, show_id, start_ts, body) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
        )

    def write_alert_deliveries(self, show_id: str, deliveries: Sequence[AlertDelivery]) -> None:
        rows = [(show_id, d.ts, d.model_dump_json()) for d in deliveries]
        self._write(
            lambda conn: conn.executemany(
                "INSERT INTO alert_deliveries (show_id, ts, body) VALUES (?, ?, ?)", rows
            )
        )

    # --- alert outbox (qosmon.alerting.outbox.Outbox) ----------------------
    def outbox_add(
        self, new: Sequence[OutboxEntry], changed: Sequence[OutboxEntry],
        alert_state: tuple[str, str | None] | None,
    ) -> None:
        rows = [(e.delivery_id, e.seq, e.show_id, e.state.value, e.model_dump_json())
                for e in (*new, *changed)]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO outbox (delivery_id, seq, show_id, state, body) "
                "VALUES (?, ?, ?, ?, ?)", rows)
            if alert_state is not None:
                show_id, body = alert_state
                if body is None:
                    conn.execute("DELETE FROM alert_state WHERE show_id = ?", (show_id,))
                else:
                    conn.execute("INSERT OR REPLACE INTO alert_state (show_id, body) "
                                 "VALUES (?, ?)", (show_id, body))

        self._write(op)

    def outbox_update(self, entries: Sequence[OutboxEntry]) -> None:
        rows = [(e.state.value, e.model_dump_json(), e.delivery_id) for e in entries]
        self._write(lambda conn: conn.executemany(
            "UPDATE outbox SET state = ?, body = ? WHERE delivery_id = ?", rows))

    def outbox_load(
        self, show_ids: Sequence[str] | None = None
    ) -> tuple[list[OutboxEntry], dict[str, str]]:
        only = "" if show_ids is None else " AND show_id IN (SELECT value FROM json_each(?))"
        extra: tuple[Any, ...] = () if show_ids is None else (json.dumps(list(show_ids)),)
        rows = self._read(
            "SELECT body FROM outbox WHERE (state = 'pending' "
            f"OR show_id IN (SELECT show_id FROM alert_state)){only} ORDER BY seq LIMIT ?",
            (*extra, OUTBOX_LOAD_MAX),
        )
        states = self._read(f"SELECT show_id, body FROM alert_state WHERE 1{only}", extra)
        return ([OutboxEntry.model_validate_json(r[0]) for r in rows],
                {show_id: body for show_id, body in states})

    def outbox_entries(self, show_id: str) -> list[OutboxEntry]:
        rows = self._read("SELECT body FROM outbox WHERE show_id = ? ORDER BY seq", (show_id,))
        return [OutboxEntry.model_validate_json(r[0]) for r in rows]

    # --- show leases (qosmon.store.base.LeasesShows) ---------------------
    # Collectors sharing one SQLite file share one host, so its clock.
    def acquire_lease(self, show_id: str, owner: str, ttl_s: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            now = time.time()
            row = conn.execute(
                "INSERT INTO show_leases (show_id, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (show_id) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE show_leases.owner = excluded.owner OR show_leases.expires_at < ? "
                "RETURNING owner", (show_id, owner, now + ttl_s, now),
            ).fetchone()
            return row is not None

        return self._write(op)

    def release_lease(self, show_id: str, owner: str) -> None:
        self._write(lambda conn: conn.execute(
            "DELETE FROM show_leases WHERE show_id = ? AND owner = ?", (show_id, owner)))

    def lease_holders(self) -> dict[str, str]:
        rows = self._read("SELECT show_id, owner FROM show_leases WHERE expires_at >= ?",
                          (time.time(),))
        return {show_id: owner for show_id, owner in rows}

    def expired_leases(self) -> list[str]:
        rows = self._read("SELECT show_id FROM show_leases WHERE expires_at < ? LIMIT 1000",
                          (time.time(),))
        return [r[0] for r in rows]

    def outbox_depth(self) -> int:
        return int(self._read("SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0])

    def put_show_summary(self, summary: ShowSummary) -> None:
        row = (summary.show_id, summary.start_ts, summary.model_dump_json())
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO show_summaries (show_id, start_ts, body) VALUES (?, ?, ?)",
                row,
            )
        )

    # --- reads --------------------------------------------------------------
    def show_summaries(
        self, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[ShowSummary]:
        """Summaries of shows that started in [start_ts, end_ts), oldest first."""
        where, params = _where(("start_ts >= ?", start_ts), ("start_ts < ?", end_ts))
        rows = self._read(
            f"SELECT body FROM show_summaries WHERE {' AND '.join(where)}"
            " ORDER BY start_ts, show_id",
            params,
        )
        return [ShowSummary.model_validate_json(r[0]) for r in rows]

    def get_show(self, show_id: str) -> Show | None:
        rows = self._read("SELECT body FROM shows WHERE show_id = ?", (show_id,))
        return Show.model_validate_json(rows[0][0]) if rows else None

    def list_shows(self) -> list[Show]:
        rows = self._read("SELECT body FROM shows ORDER BY start_ts, show_id")
        return [Show.model_validate_json(r[0]) for r in rows]

    def probe_samples(
        self,
        show_id: str,
        start_ts: float | None = None,
        end_ts: float | None = None,
        region: str | None = None,
        probe_id: str | None = None,
    ) -> list[ProbeSample]:
        raw_where, raw_params = _where(
            ("show_id = ?", show_id), ("ts >= ?", start_ts), ("ts <= ?", end_ts),
            ("region = ?", region), ("probe_id = ?", probe_id),
        )
        rows = self._read(
            f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM probe_samples "
            f"WHERE {' AND '.join(raw_where)} ORDER BY ts",
            raw_params,
        )
        out = [ProbeSample.model_validate(_row_dict(SAMPLE_COLUMNS, r)) for r in rows]
        out.extend(self._minute_samples(show_id, start_ts, end_ts, region, probe_id))
        if out and rows and len(out) > len(rows):
            out.sort(key=lambda s: s.ts)
        return out

    def _minute_samples(
        self,
        show_id: str,
        start_ts: float | None,
        end_ts: float | None,
        region: str | None,
        probe_id: str | None,
    ) -> list[ProbeSample]:
        """Downsampled minutes, as one sample per minute stamped at its end."""
        cols = ["show_id", "stream_id", "probe_id", "region", "isp", "edge_node", "state",
                *_MINUTE_AGGREGATES]
        where, params = _where(
            ("show_id = ?", show_id), ("(minute + 1) * 60 >= ?", start_ts),
            ("(minute + 1) * 60 <= ?", end_ts), ("region = ?", region),
            ("probe_id = ?", probe_id),
        )
        rows = self._read(
            f"SELECT (minute + 1) * 60.0, {', '.join(cols)} FROM probe_minutes "
            f"WHERE {' AND '.join(where)} ORDER BY minute",
            params,
        )
        out = []
        for r in rows:
            d = _row_dict(cols, r[1:])
            d["ts"] = r[0]
            out.append(ProbeSample.model_validate(d))
        return out

    def probe_series(
        self, show_id: str, metric: str, start_ts: float, end_ts: float | None,
        region: str | None, probe_id: str | None, max_points: int,
    ) -> SeriesRead:
        """See ``ReadsSeries``: counted, and bucketed in SQL when there are
        more rows than ``max_points``, so only the points leave SQLite."""
        if metric not in _MINUTE_AGGREGATES:
            raise ValueError(f"not a numeric sample column: {metric!r}")
        raw_where, raw_params = _where(
            ("show_id = ?", show_id), ("ts >= ?", start_ts), ("ts <= ?", end_ts),
            ("region = ?", region), ("probe_id = ?", probe_id),
        )
        min_where, min_params = _where(
            ("show_id = ?", show_id), ("(minute + 1) * 60 >= ?", start_ts),
            ("(minute + 1) * 60 <= ?", end_ts), ("region = ?", region),
            ("probe_id = ?", probe_id),
        )
        rows_sql = (
            f"SELECT ts, probe_id, region, stream_id, {metric} AS v FROM probe_samples "
            f"WHERE {' AND '.join(raw_where)} UNION ALL "
            f"SELECT (minute + 1) * 60.0, probe_id, region, stream_id, {metric} "
            f"FROM probe_minutes WHERE {' AND '.join(min_where)}"
        )
        params = [*raw_params, *min_params]
        n, n_series, first, last = self._read(
            f"SELECT count(*), count(DISTINCT probe_id || '/' || stream_id), min(ts), max(ts) "
            f"FROM ({rows_sql})", params)[0]
        if n <= max_points:
            rows = self._read(f"SELECT * FROM ({rows_sql}) ORDER BY ts", params)
            return SeriesRead([tuple(r) for r in rows], 0.0, False)
        # Buckets wide enough that every series fits its share of the cap.
        bucket = float(max(1, math.ceil((last - first + 1) * n_series / max_points)))
        rows = self._read(
            f"SELECT max(ts) AS t, probe_id, max(region), stream_id, avg(v) FROM ({rows_sql}) "
            f"GROUP BY probe_id, stream_id, CAST(ts / ? AS INTEGER) "
            f"ORDER BY t DESC LIMIT ?",
            [*params, bucket, max_points + 1],
        )
        truncated = len(rows) > max_points
        points = [tuple(r) for r in reversed(rows[:max_points])]
        return SeriesRead(points, bucket, truncated)

    def business(
        self, show_id: str, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[BusinessSample]:
        where, params = _where(("show_id = ?", show_id), ("ts >= ?", start_ts),
                               ("ts <= ?", end_ts))
        rows = self._read(
            f"SELECT {', '.join(BUSINESS_COLUMNS)} FROM business "
            f"WHERE {' AND '.join(where)} ORDER BY ts, region, sku",
            params,
        )
        return [BusinessSample.model_validate(_row_dict(BUSINESS_COLUMNS, r)) for r in rows]

    def stock(
        self, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[StockRecord]:
        where, params = _where(("ts >= ?", start_ts), ("ts <= ?", end_ts))
        rows = self._read(
            f"SELECT {', '.join(STOCK_COLUMNS)} FROM stock "
            f"WHERE {' AND '.join(where)} ORDER BY ts, warehouse, sku",
            params,
        )
        return [StockRecord.model_validate(_row_dict(STOCK_COLUMNS, r)) for r in rows]

    def stock_states(self, show_id: str) -> list[StockState]:
        rows = self._read(
            "SELECT body FROM stock_states WHERE show_id = ? ORDER BY ts, rowid", (show_id,)
        )
        return [StockState.model_validate_json(r[0]) for r in rows]

    def viewer_aggregates(
        self, show_id: str, start: float | None = None, end: float | None = None
    ) -> list[ViewerAggregate]:
        rows = self._read(
            "SELECT body FROM viewer_aggregates WHERE show_id = ? AND ts >= ? AND ts <= ? "
            "ORDER BY ts, rowid",
            (show_id, -math.inf if start is None else start, math.inf if end is None else end),
        )
        return [ViewerAggregate.model_validate_json(r[0]) for r in rows]

    def on_screen(self, show_id: str) -> list[OnScreen]:
        rows = self._read(
            'SELECT ts, sku, "on" FROM on_screen WHERE show_id = ? ORDER BY ts, sku', (show_id,)
        )
        return [OnScreen(show_id=show_id, ts=ts, sku=sku, on=bool(on)) for ts, sku, on in rows]

    def incidents(self, show_id: str) -> list[Incident]:
        rows = self._read(
            "SELECT body FROM incidents WHERE show_id = ? ORDER BY start_ts, incident_id",
            (show_id,),
        )
        return [Incident.model_validate_json(r[0]) for r in rows]

    def alert_deliveries(self, show_id: str) -> list[AlertDelivery]:
        rows = self._read(
            "SELECT body FROM alert_deliveries WHERE show_id = ? ORDER BY ts, rowid", (show_id,)
        )
        return [AlertDelivery.model_validate_json(r[0]) for r in rows]

    # --- beyond the Store interface ------------------------------------------
    def count_probe_samples(self, show_id: str | None = None) -> int:
        """Raw (not downsampled) samples stored, for tests and benchmarks."""
        if show_id is None:
            return int(self._read("SELECT count(*) FROM probe_samples")[0][0])
        return int(
            self._read("SELECT count(*) FROM probe_samples WHERE show_id = ?", (show_id,))[0][0]
        )

    def has_batch(self, batch_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM probe_batches WHERE batch_id = ?", (batch_id,)))

    def batch_record(self, batch_id: str) -> tuple[bool, str | None]:
        """Whether ``batch_id`` was stored, and the digest of its samples
        (``batch_digest``; None if stored before digests were kept)."""
        rows = self._read("SELECT digest FROM probe_batches WHERE batch_id = ?", (batch_id,))
        return (True, rows[0][0]) if rows else (False, None)

    def apply_retention(
        self, now: float, raw_days: float, keep_days: float | None,
        batch_id_days: float | None = None,
    ) -> dict[str, int]:
        """Downsample, then forget, old shows; forget old batch ids.

        A show whose newest raw probe sample is older than ``raw_days`` has its
        samples replaced by per-minute aggregates per probe and stream (read
        back by ``probe_samples`` as one sample per minute). With ``keep_days``
        set, everything about a show whose newest data is older than that is
        deleted. With ``batch_id_days`` set, the ids (and digests) of probe
        batches stored longer ago than that are forgotten: a probe retries
        for as long as its spool holds a batch, far less than days, and the
        ids would otherwise grow without bound. Returns counts of what was
        done.
        """
        raw_cutoff = now - raw_days * 86400.0
        done = {"shows_downsampled": 0, "samples_pruned": 0, "shows_deleted": 0,
                "batch_ids_pruned": 0}
        if batch_id_days is not None:
            ids_cutoff = now - batch_id_days * 86400.0

            def forget_ids(conn: sqlite3.Connection) -> int:
                cur = conn.execute(
                    "DELETE FROM probe_batches WHERE stored_ts < ?", (ids_cutoff,)
                )
                return int(cur.rowcount)

            done["batch_ids_pruned"] = self._write(forget_ids)
        old = self._read(
            "SELECT show_id FROM probe_samples GROUP BY show_id HAVING max(ts) < ?", (raw_cutoff,)
        )
        group_cols = "show_id, stream_id, probe_id, region, isp, edge_node"
        aggs = ", ".join(f"{fn}({col})" for col, fn in _MINUTE_AGGREGATES.items())
        for (show_id,) in old:
            def downsample(conn: sqlite3.Connection, show_id: str = show_id) -> int:
                # The minute keeps the state it ended in (its last sample's).
                conn.execute(
                    f"INSERT INTO probe_minutes ({group_cols}, minute, n, state, "
                    f"{', '.join(_MINUTE_AGGREGATES)}) "
                    f"SELECT {group_cols}, minute, count(*), max(last_state), {aggs} "
                    f"FROM (SELECT *, CAST(ts / 60 AS INTEGER) AS minute, last_value(state) OVER ("
                    f"PARTITION BY {group_cols}, CAST(ts / 60 AS INTEGER) ORDER BY ts "
                    f"ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_state "
                    f"FROM probe_samples WHERE show_id = ?) "
                    f"GROUP BY {group_cols}, minute",
                    (show_id,),
                )
                cur = conn.execute("DELETE FROM probe_samples WHERE show_id = ?", (show_id,))
                return int(cur.rowcount)

            done["samples_pruned"] += self._write(downsample)
            done["shows_downsampled"] += 1
        if keep_days is not None:
            keep_cutoff = now - keep_days * 86400.0
            gone = self._read(
                "SELECT show_id FROM probe_minutes"
                " WHERE show_id NOT IN (SELECT show_id FROM probe_samples)"
                " GROUP BY show_id HAVING (max(minute) + 1) * 60 < ?",
                (keep_cutoff,),
            )
            for (show_id,) in gone:
                def delete(conn: sqlite3.Connection, show_id: str = show_id) -> None:
                    for table in ("probe_minutes", "business", "stock_states", "shows",
                                  "on_screen", "incidents", "alert_deliveries", "outbox",
                                  "alert_state", "viewer_aggregates"):
                        conn.execute(f"DELETE FROM {table} WHERE show_id = ?", (show_id,))

                self._write(delete)
                done["shows_deleted"] += 1
            self._write(
                lambda conn: conn.execute("DELETE FROM stock WHERE ts < ?", (keep_cutoff,))
            )
        return done

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=30.0)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

