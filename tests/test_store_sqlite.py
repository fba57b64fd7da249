"""The embedded store: round trips, idempotency, group commit under
concurrency, durability across reopen, retention."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qosmon.model import (
    AlertDelivery,
    AlertStatus,
    BusinessSample,
    Cause,
    ConnectionState,
    Incident,
    OnScreen,
    ProbeSample,
    Severity,
    Show,
    StockLevel,
    StockRecord,
    StockState,
)
from qosmon.store import StoreURLError, open_store
from qosmon.store.base import BatchConflictError, StoreError
from qosmon.store.sqlite import SqliteStore

T0 = 1_700_000_000.0


def ps(ts: float, probe_id: str = "p1", region: str = "ID", show_id: str = "s1",
       **kw: object) -> ProbeSample:
    base: dict[str, object] = dict(ts=ts, show_id=show_id, stream_id="main", probe_id=probe_id,
                                   region=region, state=ConnectionState.CONNECTED, rtt_ms=40.0,
                                   packets_expected=100, packets_received=98, freeze_count=0)
    base.update(kw)
    return ProbeSample.model_validate(base)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "q.db")
    yield s
    s.close()


def test_probe_samples_round_trip_and_filters(store: SqliteStore) -> None:
    samples = [ps(T0 + 2, "p2", "TH"), ps(T0 + 1, error="ice failed", rtt_ms=None),
               ps(T0 + 3, state=ConnectionState.FAILED)]
    assert store.write_probe_batch("p1/b1", samples) is True
    got = store.probe_samples("s1")
    assert [s.ts for s in got] == [T0 + 1, T0 + 2, T0 + 3]
    assert got[0].error == "ice failed" and got[0].rtt_ms is None
    assert got[2].state is ConnectionState.FAILED
    assert got == sorted(samples, key=lambda s: s.ts)
    assert [s.ts for s in store.probe_samples("s1", region="TH")] == [T0 + 2]
    assert [s.ts for s in store.probe_samples("s1", probe_id="p1", start_ts=T0 + 2)] == [T0 + 3]
    assert [s.ts for s in store.probe_samples("s1", end_ts=T0 + 2)] == [T0 + 1, T0 + 2]
    assert store.probe_samples("other") == []


def test_batch_stored_once(store: SqliteStore) -> None:
    assert store.write_probe_batch("p1/b1", [ps(T0), ps(T0 + 1)]) is True
    assert store.write_probe_batch("p1/b1", [ps(T0), ps(T0 + 1)]) is False
    assert store.count_probe_samples() == 2


def test_concurrent_writers_group_commit(store: SqliteStore) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for i in range(25):
            samples = [ps(T0 + i + j / 10) for j in range(10)]
            ok = store.write_probe_batch(f"w{w}/b{i}", samples)
            # Half the writers retry each batch: must be refused.
            again = store.write_probe_batch(f"w{w}/b{i}", samples) if w % 2 else False
            with lock:
                results.extend([ok, not again])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(results) and len(results) == 8 * 25 * 2
    assert store.count_probe_samples() == 8 * 25 * 10


def test_one_failing_write_does_not_sink_its_group(store: SqliteStore) -> None:
    bad = ps(T0)
    bad.packets_expected = 2**70  # bypassing validation: SQLite cannot hold it
    errors: list[Exception] = []

    def write_bad() -> None:
        try:
            store.write_probe_batch("bad/1", [ps(T0), bad])
        except StoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write_bad)] + [
        threading.Thread(target=store.write_probe_batch, args=(f"ok/{i}", [ps(T0 + i)]))
        for i in range(10)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(errors) == 1
    assert store.count_probe_samples() == 10
    assert not store.has_batch("bad/1")  # so a corrected retry can still be stored


def test_everything_else_round_trips(store: SqliteStore) -> None:
    show = Show(show_id="s1", title="t", start_ts=T0, regions=["ID"],
                region_warehouses={"ID": ["WH-ID"]})
    store.put_show(show)
    store.put_show(show.model_copy(update={"end_ts": T0 + 3600}))
    assert store.get_show("s1").end_ts == T0 + 3600  # type: ignore[union-attr]
    assert [s.show_id for s in store.list_shows()] == ["s1"] and store.get_show("x") is None

    biz = [BusinessSample(ts=T0 + 1, show_id="s1", region="ID", viewers_online=10, orders=1),
           BusinessSample(ts=T0 + 2, show_id="s1", viewers_online=20)]
    store.write_business(biz)
    store.write_business(biz[:1])  # same interval again: replaced, not added
    assert store.business("s1") == biz
    assert store.business("s1", start_ts=T0 + 2) == biz[1:]

    stock = [StockRecord(ts=T0 + 5, source_ts=T0, warehouse="WH-ID", sku="A", on_hand=5),
             StockRecord(ts=T0 + 6, source_ts=T0 + 1, warehouse="WH-ID", sku="A", on_hand=4,
                         full_snapshot=True)]
    store.write_stock(stock)
    assert store.stock() == stock and store.stock(start_ts=T0 + 6) == stock[1:]

    states = [StockState(ts=T0 + 7, show_id="s1", sku="A", warehouse="WH-ID",
                         level=StockLevel.ORANGE, on_hand=4, forecast_units=5.0)]
    store.write_stock_states(states)
    assert store.stock_states("s1") == states

    ev = [OnScreen(ts=T0 + 1, show_id="s1", sku="A", on=True)]
    store.write_on_screen(ev)
    store.write_on_screen(ev)
    assert store.on_screen("s1") == ev

    inc = Incident(incident_id="i1", show_id="s1", start_ts=T0, severity=Severity.WARNING,
                   cause=Cause.BANDWIDTH)
    store.put_incidents("s1", [inc])
    store.put_incidents("s1", [inc.model_copy(update={"end_ts": T0 + 60})])
    assert [i.end_ts for i in store.incidents("s1")] == [T0 + 60]

    d = AlertDelivery(ts=T0, alert_key="k", status=AlertStatus.FIRING, notifier="am", ok=True,
                      attempt=1)
    store.write_alert_deliveries("s1", [d])
    assert store.alert_deliveries("s1") == [d]


def test_data_survives_reopen(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "q.db")
    s.write_probe_batch("p1/b1", [ps(T0)])
    s.close()
    s = SqliteStore(tmp_path / "q.db")
    try:
        assert len(s.probe_samples("s1")) == 1
        assert s.write_probe_batch("p1/b1", [ps(T0)]) is False
    finally:
        s.close()


def test_a_store_from_before_new_sample_fields_keeps_its_rows(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "q.db")
    s.write_probe_batch("p1/b1", [ps(T0)])
    s.close()
    # As an older version left it: without the fields added since.
    conn = sqlite3.connect(tmp_path / "q.db")
    conn.execute("ALTER TABLE probe_samples DROP COLUMN video_codec")
    conn.execute("ALTER TABLE probe_samples DROP COLUMN stuck_ms")
    conn.commit()
    conn.close()
    s = SqliteStore(tmp_path / "q.db")
    try:
        assert s.write_probe_batch("p1/b2", [ps(T0 + 1, video_codec="H264", stuck_ms=250.0)])
        old, new = s.probe_samples("s1")
        assert old.ts == T0 and old.video_codec is None
        assert new.video_codec == "H264" and new.stuck_ms == 250.0
    finally:
        s.close()


def test_probe_health_fields_round_trip_and_reach_an_older_store(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "q.db")
    s.write_probe_batch("p1/b1", [ps(T0)])
    s.close()
    # As a version from before the probe reported its own health left it.
    conn = sqlite3.connect(tmp_path / "q.db")
    conn.execute("ALTER TABLE probe_samples DROP COLUMN probe_lag_ms")
    conn.execute("ALTER TABLE probe_samples DROP COLUMN socket_drops")
    conn.commit()
    conn.close()
    s = SqliteStore(tmp_path / "q.db")
    try:
        assert s.write_probe_batch("p1/b2", [ps(T0 + 1, probe_lag_ms=312.5, socket_drops=17),
                                             ps(T0 + 2, probe_lag_ms=1.5, socket_drops=0)])
        old, starved, fine = s.probe_samples("s1")
        # Unknown stays unknown: not 0 ms late, not 0 drops.
        assert old.probe_lag_ms is None and old.socket_drops is None
        assert starved.probe_lag_ms == 312.5 and starved.socket_drops == 17
        assert isinstance(starved.socket_drops, int)
        assert fine.probe_lag_ms == 1.5 and fine.socket_drops == 0
    finally:
        s.close()


def test_retention_downsamples_old_shows(store: SqliteStore) -> None:
    old = [ps(T0 + i, freeze_count=1 if i == 10 else 0, rtt_ms=float(i)) for i in range(120)]
    old[59] = ps(T0 + 59, state=ConnectionState.DISCONNECTED, rtt_ms=59.0)
    store.write_probe_batch("p1/old", old)
    recent = [ps(T0 + 40 * 86400 + i, show_id="s2") for i in range(10)]
    store.write_probe_batch("p1/new", recent)
    done = store.apply_retention(now=T0 + 40 * 86400 + 100, raw_days=30, keep_days=None)
    assert done["shows_downsampled"] == 1 and done["samples_pruned"] == 120
    assert store.count_probe_samples("s1") == 0 and store.count_probe_samples("s2") == 10
    minutes = store.probe_samples("s1")
    # T0 is 20 s into a minute: 120 s of samples span three minutes.
    assert [m.packets_expected for m in minutes] == [4000, 6000, 2000]
    assert sum(m.freeze_count for m in minutes) == 1
    assert all(m.ts % 60 == 0 for m in minutes)
    assert minutes[0].rtt_ms == pytest.approx(sum(range(40)) / 40)
    assert minutes[1].state is ConnectionState.CONNECTED  # the minute's last state
    # Idempotent; and keep_days forgets the old show altogether.
    assert store.apply_retention(T0 + 40 * 86400 + 100, 30, None)["shows_downsampled"] == 0
    store.put_show(Show(show_id="s1", start_ts=T0))
    done = store.apply_retention(now=T0 + 400 * 86400, raw_days=30, keep_days=365)
    assert store.probe_samples("s1") == [] and store.get_show("s1") is None


def test_minutes_keep_the_probe_health_and_an_older_minute_table_gains_it(
    tmp_path: Path,
) -> None:
    s = SqliteStore(tmp_path / "q.db")
    s.close()
    # As a version from before the probe reported its own health made it.
    conn = sqlite3.connect(tmp_path / "q.db")
    conn.execute("ALTER TABLE probe_minutes DROP COLUMN probe_lag_ms")
    conn.execute("ALTER TABLE probe_minutes DROP COLUMN socket_drops")
    conn.execute("ALTER TABLE probe_minutes DROP COLUMN stuck_ms")
    conn.commit()
    conn.close()
    s = SqliteStore(tmp_path / "q.db")
    try:
        # 40 s in the first minute (T0 is 20 s into one), starved in two.
        first = [ps(T0 + i, probe_lag_ms=2.0, socket_drops=0) for i in range(40)]
        first[5] = ps(T0 + 5, probe_lag_ms=450.0, socket_drops=12)
        first[6] = ps(T0 + 6, probe_lag_ms=80.0, socket_drops=30)
        older = [ps(T0 + 40 + i) for i in range(20)]  # an older probe: unknown
        s.write_probe_batch("p1/b", first + older)
        s.apply_retention(now=T0 + 40 * 86400, raw_days=30, keep_days=None)
        starved, unknown = s.probe_samples("s1")
        assert starved.probe_lag_ms == 450.0 and starved.socket_drops == 42
        assert unknown.probe_lag_ms is None and unknown.socket_drops is None
        assert s.probe_series("s1", "socket_drops", T0, None, None, None, 10).points
    finally:
        s.close()


def test_minutes_keep_what_the_report_reads(store: SqliteStore) -> None:
    """A stall still going on at the end of a minute is in its stuck time
    (the report's frozen time) though no freeze ended in it."""
    stalled = [ps(T0 + i, stuck_ms=1000.0 if i >= 10 else 0.0, received_kbps=800.0,
                  rtx_kbps=40.0 if i % 2 else 0.0, audio_loss_pct=2.0,
                  audio_stalled_ms=500.0 if i >= 30 else 0.0) for i in range(40)]
    store.write_probe_batch("p1/stuck", stalled)
    store.apply_retention(now=T0 + 40 * 86400, raw_days=30, keep_days=None)
    [minute] = store.probe_samples("s1")
    assert minute.stuck_ms == 30_000.0 and minute.freeze_ms == 0.0
    assert minute.received_kbps == 800.0 and minute.rtx_kbps == 20.0
    assert minute.audio_loss_pct == 2.0 and minute.audio_stalled_ms == 5000.0


def test_open_store_urls(tmp_path: Path) -> None:
    s = open_store(f"sqlite://{tmp_path}/a.db?synchronous=normal")
    assert isinstance(s, SqliteStore)
    s.close()
    for bad in ("", "sqlite:x.db", "ftp://x", "sqlite://", f"sqlite://{tmp_path}/a.db?colour=red",
                f"sqlite://{tmp_path}/a.db?synchronous=sometimes", "influx://host:8086/",
                "influx://host:8086/b?token_env=QOSMON_SURELY_UNSET_VAR"):
        with pytest.raises(StoreURLError):
            open_store(bad)
    with pytest.raises(StoreError):
        open_store(f"sqlite://{tmp_path}/no/such/dir/a.db")


@pytest.mark.parametrize("n", [1, 2, 3, 100, 257, 600])
def test_batches_of_any_size_round_trip_in_order(store: SqliteStore, n: int) -> None:
    # Multi-row inserts of power-of-two sizes: every size must come out whole.
    samples = [ps(T0 + i, rtt_ms=float(i), packets_expected=i) for i in range(n)]
    assert store.write_probe_batch("p1/sizes", samples) is True
    assert store.probe_samples("s1") == samples


@contextlib.contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another connection holds SQLite's write lock until the block ends."""
    blocker = sqlite3.connect(path, isolation_level=None, timeout=5)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        blocker.execute("COMMIT")
        blocker.close()


def test_a_group_of_batches_is_stored_together_and_a_bad_one_fails_alone(
    store: SqliteStore,
) -> None:
    # Another connection holds the write lock: the writer blocks on the
    # first batch, everything submitted meanwhile forms one group.
    with write_lock_held(store.path):
        first = store.submit_probe_batch("p1/first", [ps(T0)])
        time.sleep(0.3)  # the writer has taken it and waits for the lock
        bad = ps(T0 + 9)
        bad.packets_expected = 2**70  # bypassing validation: SQLite cannot hold it
        futures = {
            "dup_of_first": store.submit_probe_batch("p1/first", [ps(T0)]),
            "new": store.submit_probe_batch("p1/new", [ps(T0 + 2), ps(T0 + 3)]),
            "new_again": store.submit_probe_batch("p1/new", [ps(T0 + 2), ps(T0 + 3)]),
            "new_reused": store.submit_probe_batch("p1/new", [ps(T0 + 4)]),
            "bad": store.submit_probe_batch("p1/bad", [ps(T0 + 5), bad]),
            "unicode": store.submit_probe_batch("探针-é/b\"1\\", [ps(T0 + 6)]),
        }
        assert not any(f.done() for f in [first, *futures.values()])
    assert first.result(timeout=10) is True
    with pytest.raises(StoreError, match="write failed"):
        futures.pop("bad").result(timeout=10)
    # The same id with other samples is not a retry: refused, not dropped.
    with pytest.raises(BatchConflictError, match="'new' was stored before with other content"):
        futures.pop("new_reused").result(timeout=10)
    assert {k: f.result(timeout=10) for k, f in futures.items()} == {
        "dup_of_first": False, "new": True, "new_again": False, "unicode": True,
    }
    assert [s.ts for s in store.probe_samples("s1")] == [T0, T0 + 2, T0 + 3, T0 + 6]
    assert not store.has_batch("p1/bad")  # so a corrected retry can still be stored
    assert store.has_batch("探针-é/b\"1\\")
    assert store.write_probe_batch("探针-é/b\"1\\", [ps(T0 + 6)]) is False
