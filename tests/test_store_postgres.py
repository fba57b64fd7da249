"""The PostgreSQL document store against a real server the test starts:
documents by id, the alert outbox, and show leases that another collector
takes only once their holder stopped renewing them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from qosmon.alerting.outbox import EntryState, OutboxEntry
from qosmon.model import Alert, AlertStatus, Cause, Incident, Severity, Show
from qosmon.store.base import LeasesShows, StoreError
from qosmon.store.postgres import PostgresDocuments
from tests import postgres_server

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not postgres_server.available(),
                       reason="PostgreSQL not installed (Debian package postgresql)"),
]


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    with postgres_server.postgres() as url:
        yield url


def _entry(show_id: str, seq: int, status: AlertStatus = AlertStatus.FIRING) -> OutboxEntry:
    alert = Alert(key=f"qosmon:{show_id}:ID:*:packet_loss", status=status, show_id=show_id,
                  region="ID", cause=Cause.PACKET_LOSS, severity=Severity.WARNING,
                  starts_at=1000.0, summary="loss")
    return OutboxEntry(delivery_id=f"msg_{show_id}_{seq}", seq=seq, route="hook",
                       show_id=show_id, group_key=f"qosmon:{show_id}:ID:oncall",
                       audience="oncall", region="ID", alerts=[alert], created_ts=1000.0 + seq)


def test_documents_round_trip_and_two_stores_see_one_another(dsn: str) -> None:
    a, b = PostgresDocuments(dsn), PostgresDocuments(dsn)  # two collectors
    try:
        show = Show(show_id="pg-1", title="pg", start_ts=1000.0, regions=["ID"])
        a.put_show(show)
        a.put_show(show.model_copy(update={"end_ts": 2000.0}))
        assert b.get_show("pg-1") == show.model_copy(update={"end_ts": 2000.0})
        inc = Incident(incident_id="inc-1", show_id="pg-1", start_ts=1100.0,
                       severity=Severity.WARNING, cause=Cause.PACKET_LOSS,
                       scope={"region": "ID"})
        a.put_incidents("pg-1", [inc])
        a.put_incidents("pg-1", [inc.model_copy(update={"end_ts": 1200.0})])
        assert [i.end_ts for i in b.incidents("pg-1")] == [1200.0]
        assert a.submit_probe_batch("p1/b1", []).result() is True
        assert b.submit_probe_batch("p1/b1", []).result() is False
        assert b.has_batch("p1/b1") and not b.has_batch("p1/b2")
    finally:
        a.close()
        b.close()


def test_outbox_keeps_pending_entries_and_alert_state(dsn: str) -> None:
    store = PostgresDocuments(dsn)
    try:
        first, second = _entry("pg-2", 1), _entry("pg-2", 2, AlertStatus.RESOLVED)
        store.outbox_add([first, second], [], ("pg-2", '{"alerts": [], "groups": []}'))
        first.state = EntryState.DELIVERED
        store.outbox_update([first])
        entries, states = store.outbox_load(["pg-2"])
        assert [(e.delivery_id, e.state) for e in entries] == [
            ("msg_pg-2_1", EntryState.DELIVERED), ("msg_pg-2_2", EntryState.PENDING)]
        assert states == {"pg-2": '{"alerts": [], "groups": []}'}
        store.outbox_add([], [], ("pg-2", None))
        entries, states = store.outbox_load(["pg-2"])
        assert [e.delivery_id for e in entries] == ["msg_pg-2_2"] and states == {}
    finally:
        store.close()


def test_lease_is_taken_over_only_when_it_runs_out(dsn: str) -> None:
    a, b = PostgresDocuments(dsn), PostgresDocuments(dsn)
    try:
        assert isinstance(a, LeasesShows)
        assert a.acquire_lease("pg-3", "collector-a", 1.0)
        assert not b.acquire_lease("pg-3", "collector-b", 1.0)
        assert a.acquire_lease("pg-3", "collector-a", 1.0)  # renewed
        assert b.lease_holders()["pg-3"] == "collector-a"
        time.sleep(1.2)  # a stops renewing
        assert b.acquire_lease("pg-3", "collector-b", 5.0)
        assert not a.acquire_lease("pg-3", "collector-a", 5.0)
        a.release_lease("pg-3", "collector-a")  # not a's: nothing happens
        assert b.lease_holders()["pg-3"] == "collector-b"
        b.release_lease("pg-3", "collector-b")
        assert "pg-3" not in a.lease_holders()
    finally:
        a.close()
        b.close()


def test_unreachable_server_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as err:
        PostgresDocuments("postgresql://qosmon:hunter2-secret@127.0.0.1:1/postgres",
                          connect_timeout_s=2)
    assert "hunter2-secret" not in str(err.value)


def test_store_url_names_the_documents_variable_not_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qosmon.errors import StoreURLError
    from qosmon.store import open_store
    from qosmon.store.url import parse_store_url

    url = "influx://127.0.0.1:8428/qosmon?documents_env=QOSMON_TEST_PG_UNSET"
    assert parse_store_url(url).documents_env == "QOSMON_TEST_PG_UNSET"  # type: ignore[union-attr]
    monkeypatch.delenv("QOSMON_TEST_PG_UNSET", raising=False)
    with pytest.raises(StoreURLError, match="QOSMON_TEST_PG_UNSET"):
        open_store(url)


async def test_health_says_the_live_tick_fails_when_the_store_is_gone() -> None:
    import asyncio

    from qosmon.live import LivePipeline, LiveSettings

    with postgres_server.postgres() as own:  # a server of its own, to stop it
        docs = PostgresDocuments(own)
        pipeline = LivePipeline(docs, report_dir=None,  # type: ignore[arg-type]
                                settings=LiveSettings(lease_ttl_s=1, lease_renew_s=0.1))
        await pipeline.start()
        await pipeline.tick(time.time())
        assert pipeline.health(time.time())["problems"] == []
    await asyncio.sleep(0.2)
    with pytest.raises(StoreError):
        await pipeline.tick(time.time())
    problems = pipeline.health(time.time() + 30)["problems"]
    assert len(problems) == 1 and "PostgreSQL" in problems[0], problems
    assert "live tick not completed" in problems[0]
    docs.close()
