"""The durable outbox of alert deliveries.

Every notification the rules decide on is written here, once per route,
before anything is sent, and stays until its receiver accepted it (a 2xx) or
a later notification made it pointless (superseded). So a notification
queued when the collector died, or whose receiver was down longer than the
retry budget, is still sent when it can be, in the order it was queued (a
firing before its resolve).

The alert rules' state of a show is saved in the same transaction as the
notifications it produced: after a restart the outbox and the rules agree on
what was (to be) sent.

Backends: ``MemoryOutbox`` (nothing survives the process: the alert-test
command, unit tests) and the stores, which implement ``Outbox`` on their own
tables (``SqliteStore``, and the PostgreSQL document store where several
collectors share one).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from qosmon.alerting.rules import Notification
from qosmon.model import Alert, AlertStatus


class EntryState(StrEnum):
    PENDING = "pending"  # not yet accepted by its receiver
    DELIVERED = "delivered"  # the receiver answered 2xx
    SUPERSEDED = "superseded"  # a later firing of the same alerts replaced it
    REJECTED = "rejected"  # the receiver refused it for good (4xx)
    SKIPPED = "skipped"  # resolves only, of alerts this receiver never saw firing
    DROPPED = "dropped"  # the route's queue bound was reached (oldest dropped)


class OutboxEntry(BaseModel):
    """One notification for one route, with its delivery state."""

    model_config = ConfigDict(extra="forbid")

    delivery_id: str
    seq: int  # creation order; delivery on a route follows it
    route: str  # the route's name
    show_id: str
    group_key: str
    audience: str  # "oncall" or "merchandising"
    region: str = ""
    alerts: list[Alert]
    created_ts: float
    state: EntryState = EntryState.PENDING
    attempts: int = 0
    next_try_ts: float = 0.0
    last_error: str = ""
    done_ts: float | None = None
    # Delivered or still trying after the route's retry budget ran out, or
    # queued by an earlier collector process: the report says so.
    late: bool = False

    @property
    def pending(self) -> bool:
        return self.state == EntryState.PENDING

    def notification(self, alerts: Sequence[Alert] | None = None) -> Notification:
        return Notification(
            group_key=self.group_key, show_id=self.show_id, region=self.region,
            route=self.audience, alerts=tuple(self.alerts if alerts is None else alerts),
            ts=self.created_ts, delivery_id=self.delivery_id,
        )

    def all_firing(self) -> bool:
        return all(a.status == AlertStatus.FIRING for a in self.alerts)


_seq_lock = threading.Lock()
_last_seq = 0


def next_seq() -> int:
    """Increasing across calls and, being clock based, across restarts."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns())
        return _last_seq


def new_delivery_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


@runtime_checkable
class Outbox(Protocol):
    """Where outbox entries and the alert rules' state are kept."""

    def outbox_add(
        self, new: Sequence[OutboxEntry], changed: Sequence[OutboxEntry],
        alert_state: tuple[str, str | None] | None,
    ) -> None:
        """In one transaction: insert ``new``, update ``changed``, and set
        (``(show_id, json)``) or delete (``(show_id, None)``) a show's rules
        state."""
        ...

    def outbox_update(self, entries: Sequence[OutboxEntry]) -> None: ...

    def outbox_load(
        self, show_ids: Sequence[str] | None = None
    ) -> tuple[list[OutboxEntry], dict[str, str]]:
        """What a collector taking over needs: every pending entry, the
        entries of shows that still have alert state (oldest first), and the
        rules state per show; of the given shows only, if given."""
        ...

    def outbox_entries(self, show_id: str) -> list[OutboxEntry]: ...


class MemoryOutbox:
    """``Outbox`` in memory: nothing outlives the process."""

    def __init__(self) -> None:
        self._entries: dict[str, OutboxEntry] = {}
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()

    def outbox_add(
        self, new: Sequence[OutboxEntry], changed: Sequence[OutboxEntry],
        alert_state: tuple[str, str | None] | None,
    ) -> None:
        with self._lock:
            for e in itertools.chain(new, changed):
                self._entries[e.delivery_id] = e.model_copy()
            if alert_state is not None:
                show_id, body = alert_state
                if body is None:
                    self._states.pop(show_id, None)
                else:
                    self._states[show_id] = body

    def outbox_update(self, entries: Sequence[OutboxEntry]) -> None:
        with self._lock:
            for e in entries:
                self._entries[e.delivery_id] = e.model_copy()

    def outbox_load(
        self, show_ids: Sequence[str] | None = None
    ) -> tuple[list[OutboxEntry], dict[str, str]]:
        with self._lock:
            keep = [e.model_copy() for e in self._entries.values()
                    if (e.pending or e.show_id in self._states)
                    and (show_ids is None or e.show_id in show_ids)]
            states = {k: v for k, v in self._states.items()
                      if show_ids is None or k in show_ids}
            return sorted(keep, key=lambda e: e.seq), states

    def outbox_entries(self, show_id: str) -> list[OutboxEntry]:
        with self._lock:
            return sorted((e.model_copy() for e in self._entries.values()
                           if e.show_id == show_id), key=lambda e: e.seq)
