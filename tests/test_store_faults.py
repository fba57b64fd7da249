"""The embedded store under faults: a full disk, a caller that gives up, a
writer or a read that takes too long. The writer must fail what it could
not write, live on, say so in ``health()``, and never make a caller wait
without bound."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qosmon.model import ConnectionState, ProbeSample
from qosmon.store.base import StoreError
from qosmon.store.sqlite import SqliteStore

T0 = 1_700_000_000.0


def ps(ts: float) -> ProbeSample:
    return ProbeSample(ts=ts, show_id="s1", stream_id="main", probe_id="p1", region="ID",
                       state=ConnectionState.CONNECTED, error="x" * 400)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "q.db", timeout_s=1.0)
    yield s
    s.close()


def _cap_pages(store: SqliteStore, extra_pages: int | None) -> None:
    """Make the database file "full" a few pages from now (None: lift it).
    SQLite then fails a write with SQLITE_FULL and rolls the whole
    transaction back by itself, as on a full disk."""
    def cap(conn: sqlite3.Connection) -> None:
        n = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={n + extra_pages if extra_pages else 2**31}")

    store._write(cap)


def test_full_disk_fails_the_group_and_the_writer_lives_on(store: SqliteStore) -> None:
    # Finding: one failing group (here SQLITE_FULL, whose automatic rollback
    # also removes the savepoints) killed the writer thread; every later
    # write waited forever while /healthz said ok.
    assert store.write_probe_batch("p1/before", [ps(T0)]) is True
    _cap_pages(store, 2)
    with pytest.raises(StoreError, match="full"):
        store.write_probe_batch("p1/big", [ps(T0 + i) for i in range(200)])
    with pytest.raises(StoreError, match="full"):  # a write after the failure: still answered
        store.write_probe_batch("p1/big2", [ps(T0 + i) for i in range(200)])
    health = store.health()
    assert health.writer_alive and not health.ok
    assert health.failed_groups >= 1 and "full" in (health.last_error or "")
    _cap_pages(store, None)
    # The refused batch was not half stored: its retry goes in whole.
    assert store.write_probe_batch("p1/big", [ps(T0 + i) for i in range(200)]) is True
    assert store.count_probe_samples() == 201
    assert store.health().ok


def test_a_caller_that_gave_up_is_not_written_for_and_does_not_kill_the_writer(
    store: SqliteStore,
) -> None:
    # Another connection holds the write lock: the writer waits on the
    # first batch while the second is queued, then its caller gives up.
    blocker = sqlite3.connect(store.path, isolation_level=None, timeout=5)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        first = store.submit_probe_batch("p1/first", [ps(T0)])
        time.sleep(0.2)
        second = store.submit_probe_batch("p1/second", [ps(T0 + 1)])
        assert second.cancel()
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert first.result(timeout=5) is True
    assert store.write_probe_batch("p1/third", [ps(T0 + 2)]) is True
    assert not store.has_batch("p1/second")
    assert store.health().ok


def test_a_stuck_writer_times_callers_out_and_shows_in_health(store: SqliteStore) -> None:
    stuck = store._submit(lambda conn: time.sleep(2.5))
    time.sleep(0.1)
    t0 = time.monotonic()
    with pytest.raises(StoreError, match=r"timed out after 1 s \(not written\)"):
        store.write_probe_batch("p1/late", [ps(T0)])
    assert time.monotonic() - t0 < 2.0
    time.sleep(0.2)  # the stuck op has now run longer than the timeout
    health = store.health()
    assert not health.ok and health.busy_s > 1.0
    stuck.result(timeout=10)
    assert store.health().ok
    assert not store.has_batch("p1/late")  # taken back: never written
    assert store.write_probe_batch("p1/late", [ps(T0)]) is True


def test_a_long_read_is_interrupted(store: SqliteStore) -> None:
    t0 = time.monotonic()
    with pytest.raises(StoreError, match="read timed out after 1 s"):
        store._read("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                    "SELECT count(*) FROM n")
    assert time.monotonic() - t0 < 3.0
    # The connection is usable again.
    assert store.probe_samples("s1") == []


def test_retention_forgets_old_batch_ids(store: SqliteStore) -> None:
    assert store.write_probe_batch("p1/old", [ps(T0)]) is True
    now = time.time()
    done = store.apply_retention(now + 8 * 86400, raw_days=30, keep_days=None,
                                 batch_id_days=7)
    assert done["batch_ids_pruned"] == 1 and not store.has_batch("p1/old")
    assert store.apply_retention(now, 30, None, batch_id_days=7)["batch_ids_pruned"] == 0


def test_the_store_timeout_is_set_in_its_url(tmp_path: Path) -> None:
    from qosmon.store import StoreURLError, open_store

    store = open_store(f"sqlite://{tmp_path / 'u.db'}?timeout_s=2.5")
    try:
        assert isinstance(store, SqliteStore) and store.timeout_s == 2.5
    finally:
        store.close()
    with pytest.raises(StoreURLError, match="timeout_s must be seconds"):
        open_store(f"sqlite://{tmp_path / 'u.db'}?timeout_s=never")
