"""The durable alert outbox against a real local receiver and the real SQLite
store: nothing queued is lost to a receiver down past the retry budget or to
a collector restart, a firing always goes before its resolve, and a resolve
never goes alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from qosmon.alerting import signing
from qosmon.alerting.alerter import Alerter
from qosmon.alerting.config import RetryPolicy
from qosmon.alerting.outbox import EntryState
from qosmon.model import AlertDelivery, Severity
from qosmon.store.sqlite import SqliteStore
from tests.alertmanager_server import Receiver, receiver
from tests.test_alert_alerter import SECRET, config, incident, webhook

SHORT_BUDGET = RetryPolicy(max_attempts=2, initial_backoff_s=0.1, max_backoff_s=0.3)


async def _until(cond: object, timeout_s: float = 10.0) -> None:
    assert callable(cond)
    for _ in range(int(timeout_s / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_receiver_down_past_the_retry_budget_gets_firing_then_resolve(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "q.db")
    rx = Receiver()  # down
    log: list[AlertDelivery] = []
    alerter = Alerter(config(webhook(rx.url + "/hook", retry=SHORT_BUDGET)),
                      on_delivery=log.append, outbox=store)
    await alerter.start()
    try:
        await alerter.update("show1", [incident()], 1001.0)
        await alerter.update("show1", [incident(end=1002.0)], 1003.0)
        # Both attempts of the budget fail, then it keeps trying.
        await _until(lambda: sum(not d.ok for d in log) >= 4)
        assert alerter.depth() == 2
        entries = store.outbox_entries("show1")
        assert [e.state for e in entries] == [EntryState.PENDING, EntryState.PENDING]
        assert entries[0].late and entries[0].attempts >= 3
        await rx.start()
        try:
            await rx.wait_for(2, timeout_s=10)
            await alerter.flush(5)
        finally:
            await rx.stop()
    finally:
        await alerter.close()
    assert [r.json()["status"] for r in rx.requests] == ["firing", "resolved"]
    ok = [d for d in log if d.ok]
    assert [d.status for d in ok] == ["firing", "resolved"]
    assert ok[0].late and ok[0].delivery_id == rx.requests[0].headers["webhook-id"]
    assert [e.state for e in store.outbox_entries("show1")] == [EntryState.DELIVERED] * 2
    store.close()


async def test_outbox_survives_a_restart_and_the_alert_is_not_sent_twice(
    tmp_path: Path,
) -> None:
    db = tmp_path / "q.db"
    rx = Receiver()  # down while the first process runs
    store = SqliteStore(db)
    first = Alerter(config(webhook(rx.url + "/hook")), outbox=store)
    await first.start()
    await first.update("show1", [incident()], 1001.0)
    (queued,) = store.outbox_entries("show1")
    # The process goes away with the firing undelivered.
    await first.close()
    store.close()

    store = SqliteStore(db)
    log: list[AlertDelivery] = []
    second = Alerter(config(webhook(rx.url + "/hook")), on_delivery=log.append, outbox=store)
    await second.start()
    await rx.start()
    try:
        (fire,) = await rx.wait_for(1, timeout_s=10)
        # The same notification, by its id: a receiver that did get an
        # earlier attempt would drop this one.
        assert fire.headers[signing.ID_HEADER] == queued.delivery_id
        assert fire.json()["delivery_id"] == queued.delivery_id
        assert signing.verify(SECRET, fire.headers, fire.body, fire.received) is None
        assert log[-1].late and log[-1].ok
        # The rules' state came back too: the incident still open sends
        # nothing new; its end sends the resolve, once.
        assert await second.update("show1", [incident()], 1010.0) == []
        await second.update("show1", [incident(end=1011.0)], 1012.0)
        await second.flush(5)
        await asyncio.sleep(0.3)
    finally:
        await second.close()
        await rx.stop()
    assert [r.json()["status"] for r in rx.requests] == ["firing", "resolved"]
    assert rx.requests[1].json()["alerts"][0]["ends_at"] == 1011.0
    store.close()


async def test_no_resolve_for_an_alert_the_receiver_never_took() -> None:
    async with receiver(status={"/hook": 400}) as rx:
        log: list[AlertDelivery] = []
        alerter = Alerter(config(webhook(rx.url + "/hook")), on_delivery=log.append)
        await alerter.start()
        try:
            await alerter.update("show1", [incident()], 1001.0)
            await alerter.flush(5)
            rx.status["/hook"] = 200
            await alerter.update("show1", [incident(end=1002.0)], 1003.0)
            await alerter.flush(5)
            states = [e.state for e in alerter.outbox.outbox_entries("show1")]
        finally:
            await alerter.close()
    assert rx.requests == []
    assert [(d.status, d.ok) for d in log] == [("firing", False)]
    assert states == [EntryState.REJECTED, EntryState.SKIPPED]


async def test_a_waiting_firing_is_superseded_by_its_escalation(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db")
    rx = Receiver()  # down
    alerter = Alerter(config(webhook(rx.url + "/hook"), escalate_after_s=5), outbox=store)
    await alerter.start()
    try:
        await alerter.update("show1", [incident()], 1001.0)
        # Open long enough to go up a severity: a new firing of the same alert.
        await alerter.update("show1", [incident()], 1010.0)
        states = [e.state for e in store.outbox_entries("show1")]
        await rx.start()
        try:
            await rx.wait_for(1, timeout_s=10)
            await alerter.flush(5)
            await asyncio.sleep(0.3)
        finally:
            await rx.stop()
    finally:
        await alerter.close()
        store.close()
    assert states == [EntryState.SUPERSEDED, EntryState.PENDING]
    (got,) = rx.requests
    assert got.json()["alerts"][0]["severity"] == Severity.CRITICAL
