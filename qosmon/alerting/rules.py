"""Alert rules: from a show's incidents to the notifications worth sending.

Pure: no I/O, no clock (``now`` is an argument), no event loop. The runtime
(``qosmon.alerting.alerter``) calls :meth:`AlertRules.evaluate` about once a
second and hands what it returns to the notifiers.

The lifecycle of one alert (one dedup key = show x region x node x cause):

* pending   - an incident exists but has lasted less than ``pending_s`` (or its
              cause's ``pending_by_cause``);
* firing    - sent (after ``group_wait_s`` so neighbours share one message);
* ending    - every incident behind it has ended; held for ``cool_off_s`` so
              that a re-fire re-opens the same alert instead of paging again;
* resolved  - cool-off passed: the resolve is sent with the real end time
              and the alert is forgotten.

Routing: stream causes (and ``unknown``) go to ``oncall``; stock causes and
``network_fine`` to ``merchandising``; ``probe_local`` goes nowhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from qosmon.model import (
    STOCK_CAUSES,
    STREAM_CAUSES,
    Alert,
    AlertStatus,
    Cause,
    Incident,
    Severity,
    incident_alert_key,
    scope_node,
    scope_region,
)

ONCALL = "oncall"
MERCHANDISING = "merchandising"
ROUTE_NAMES = (ONCALL, MERCHANDISING)

# Causes a node failure explains when they show up in the scope it covers.
SYMPTOM_CAUSES = frozenset(STREAM_CAUSES - {Cause.NODE_FAILURE} | {Cause.UNKNOWN})

# The runtime evaluates about once a second, shortly after each whole
# second, so two evaluations are not exactly a second apart. A wait that
# would end within this much after an evaluation counts as over at it:
# otherwise a tick that comes 2 ms "early" relative to the previous one
# holds a page back for a whole extra second.
TICK_SLACK_S = 0.1

_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
_SEVERITY_BY_RANK = {rank: sev for sev, rank in _SEVERITY_RANK.items()}


class RuleSettings(BaseModel):
    """Timings of the alert lifecycle, in seconds."""

    model_config = ConfigDict(extra="forbid")

    # An incident must have lasted this long since its onset before it
    # pages. Detection already debounces (each probe signal is a median or
    # a count over a window, and a group must be seen before an incident
    # opens), so this only adds to incidents detected within it.
    pending_s: float = Field(default=2.0, ge=0, le=3600)
    # Longer waits for causes that are least urgent and most often brief:
    # RTT up while media keeps flowing hurts interaction, not the picture,
    # and a busy host or a route flap raises it for seconds at a time.
    pending_by_cause: dict[Cause, Annotated[float, Field(ge=0, le=3600)]] = Field(
        default_factory=lambda: {Cause.HIGH_LATENCY: 10.0})
    # Wait after the first alert of a group before sending it, so alerts
    # due together go as one message. 0: the first goes at once (diagnosis
    # already groups probes failing together into one incident); what
    # follows within group_interval_s is bundled into the next message.
    group_wait_s: float = Field(default=0.0, ge=0, le=3600)
    # Minimum time between two notifications of one group (new alerts joining
    # a group that was already notified, resolves, escalations).
    group_interval_s: float = Field(default=5.0, ge=0, le=3600)
    repeat_interval_s: float = Field(default=600.0, gt=0, le=86400)
    cool_off_s: float = Field(default=15.0, ge=0, le=3600)
    # An alert open this long goes up one severity level.
    escalate_after_s: float = Field(default=120.0, gt=0, le=86400)


def route_for(cause: Cause) -> str | None:
    """Which audience hears about a cause; None: nobody is paged."""
    if cause == Cause.PROBE_LOCAL:
        return None
    if cause in STOCK_CAUSES or cause == Cause.NETWORK_FINE:
        return MERCHANDISING
    return ONCALL


def scope_severity(region: str, node: str) -> Severity:
    """The floor set by how much of the show is hit: whole show > region > node."""
    if not region and not node:
        return Severity.CRITICAL
    if not node or not region:
        # A region, or a node that serves several regions.
        return Severity.WARNING
    return Severity.INFO


def alert_severity(
    incident_severity: Severity, region: str, node: str, open_s: float, escalate_after_s: float
) -> Severity:
    rank = max(_SEVERITY_RANK[incident_severity], _SEVERITY_RANK[scope_severity(region, node)])
    if open_s >= escalate_after_s:
        rank += 1
    return _SEVERITY_BY_RANK[min(rank, 2)]


@dataclasses.dataclass(frozen=True)
class Notification:
    """Alerts of one group (show x region x route) sent together."""

    group_key: str
    show_id: str
    region: str
    route: str
    alerts: tuple[Alert, ...]
    ts: float
    # Given by the outbox when the notification is queued; the same on
    # every attempt so receivers can drop duplicates.
    delivery_id: str = ""


@dataclasses.dataclass
class _AlertState:
    key: str
    show_id: str
    region: str
    node: str
    cause: Cause
    route: str
    starts_at: float
    severity: Severity
    summary: str
    evidence: str
    incident_id: str
    ended_at: float | None = None  # all incidents over; in cool-off until sent
    sent_severity: Severity | None = None  # None: no firing sent yet
    last_sent: float | None = None
    inhibited: bool = False
    incident_ids: set[str] = dataclasses.field(default_factory=set)

    def to_alert(self, status: AlertStatus) -> Alert:
        return Alert(
            key=self.key,
            status=status,
            show_id=self.show_id,
            region=self.region,
            node=self.node,
            cause=self.cause,
            severity=self.severity,
            route=self.route,
            starts_at=self.starts_at,
            ends_at=self.ended_at if status == AlertStatus.RESOLVED else None,
            summary=self.summary,
            evidence=self.evidence,
            incident_id=self.incident_id,
        )


@dataclasses.dataclass
class _GroupState:
    first_due: float | None = None
    last_sent: float | None = None


def _primary(incidents: Sequence[Incident]) -> Incident:
    # The most severe, then the oldest: the one a person should read first.
    return min(incidents, key=lambda i: (-_SEVERITY_RANK[i.severity], i.start_ts, i.incident_id))


def _inhibits(failure: _AlertState, symptom: _AlertState) -> bool:
    """Does a node failure in ``failure``'s scope explain ``symptom``?"""
    if failure.show_id != symptom.show_id or symptom.cause not in SYMPTOM_CAUSES:
        return False
    if not failure.region and not failure.node:
        return True  # origin / whole show down: every stream symptom follows
    if failure.region and failure.region != symptom.region:
        return False
    if failure.node and symptom.node and failure.node != symptom.node:
        return False
    if failure.node and not failure.region:
        return symptom.node == failure.node
    return True


class AlertRules:
    """The alert state of every show, advanced by :meth:`evaluate`."""

    def __init__(self, settings: RuleSettings | None = None) -> None:
        self.settings = settings or RuleSettings()
        self._alerts: dict[str, _AlertState] = {}
        self._groups: dict[tuple[str, str, str], _GroupState] = {}

    def open_alerts(self, show_id: str | None = None) -> list[Alert]:
        """Alerts currently firing (or in cool-off), for status pages."""
        return [
            s.to_alert(AlertStatus.FIRING)
            for s in self._alerts.values()
            if show_id is None or s.show_id == show_id
        ]

    def export_show(self, show_id: str) -> dict[str, Any]:
        """One show's alert state as JSON-able data: what was sent, at what
        severity, when, and each group's timing. ``restore_show`` takes it
        back after a restart, so an alert already sent is not sent again and
        is resolved when its incidents end."""
        alerts = []
        for s in self._alerts.values():
            if s.show_id != show_id:
                continue
            d = dataclasses.asdict(s)
            d["incident_ids"] = sorted(s.incident_ids)
            alerts.append(d)
        groups = [
            {"region": gk[1], "route": gk[2], "first_due": g.first_due, "last_sent": g.last_sent}
            for gk, g in self._groups.items() if gk[0] == show_id
        ]
        return {"alerts": alerts, "groups": groups}

    def restore_show(self, show_id: str, data: dict[str, Any]) -> None:
        """Replace one show's alert state by what ``export_show`` gave.
        Raises ValueError (or KeyError/TypeError) for data it did not give."""
        restored: dict[str, _AlertState] = {}
        for d in data.get("alerts", []):
            d = dict(d)
            d["cause"] = Cause(d["cause"])
            d["severity"] = Severity(d["severity"])
            if d.get("sent_severity") is not None:
                d["sent_severity"] = Severity(d["sent_severity"])
            d["incident_ids"] = set(d.get("incident_ids", []))
            state = _AlertState(**d)
            if state.show_id != show_id:
                raise ValueError(f"alert {state.key} belongs to show {state.show_id}")
            restored[state.key] = state
        groups = {
            (show_id, g["region"], g["route"]): _GroupState(g.get("first_due"), g.get("last_sent"))
            for g in data.get("groups", [])
        }
        for key in [k for k, s in self._alerts.items() if s.show_id == show_id]:
            del self._alerts[key]
        for gk in [g for g in self._groups if g[0] == show_id]:
            del self._groups[gk]
        self._alerts.update(restored)
        self._groups.update(groups)

    def evaluate(
        self, show_id: str, incidents: Iterable[Incident], now: float, *, show_ended: bool = False
    ) -> list[Notification]:
        """Advance ``show_id``'s alerts to ``now`` given its current incidents.

        ``incidents`` may hold ended incidents too (``end_ts`` set); an
        incident missing from the list is taken as ended. With ``show_ended``
        every open alert is resolved now, without cool-off or group interval.
        """
        cfg = self.settings
        active: dict[str, list[Incident]] = {}
        ended_at: dict[str, float] = {}  # incident id -> end
        for inc in incidents:
            if inc.show_id != show_id:
                continue
            route = route_for(inc.cause)
            if route is None:
                continue
            key = incident_alert_key(inc)
            if inc.end_ts is None and not show_ended:
                active.setdefault(key, []).append(inc)
            elif inc.end_ts is not None:
                ended_at[inc.incident_id] = inc.end_ts

        for key, incs in active.items():
            state = self._alerts.get(key)
            if state is None:
                # Pending: only an incident that has lasted long enough opens
                # an alert; an open one is kept alive by any incident.
                ripe = [i for i in incs if now - i.start_ts + TICK_SLACK_S
                        >= cfg.pending_by_cause.get(i.cause, cfg.pending_s)]
                if not ripe:
                    continue
                first = _primary(ripe)
                region, node = scope_region(first.scope), scope_node(first.scope)
                state = _AlertState(
                    key=key, show_id=show_id, region=region, node=node, cause=first.cause,
                    route=route_for(first.cause) or ONCALL,
                    starts_at=min(i.start_ts for i in ripe), severity=first.severity,
                    summary="", evidence="", incident_id=first.incident_id,
                )
                self._alerts[key] = state
            primary = _primary(incs)
            state.ended_at = None
            state.incident_ids.update(i.incident_id for i in incs)
            state.incident_id = primary.incident_id
            state.summary = primary.summary
            state.evidence = primary.evidence[0].text if primary.evidence else ""
            state.severity = alert_severity(
                max((i.severity for i in incs), key=_SEVERITY_RANK.__getitem__),
                state.region, state.node, now - state.starts_at, cfg.escalate_after_s,
            )

        mine = [s for s in self._alerts.values() if s.show_id == show_id]
        for state in mine:
            if state.key not in active and state.ended_at is None:
                # Only this alert's own incidents date its end (an older one
                # of the same scope may linger in the list); gone ones end now.
                ends = [ended_at[i] for i in state.incident_ids if i in ended_at]
                state.ended_at = min(now, max(ends)) if ends else now

        failures = [s for s in mine if s.cause == Cause.NODE_FAILURE and s.ended_at is None]
        for state in mine:
            state.inhibited = any(_inhibits(f, state) for f in failures)

        return self._notify(show_id, mine, now, show_ended)

    def _notify(
        self, show_id: str, states: list[_AlertState], now: float, show_ended: bool
    ) -> list[Notification]:
        cfg = self.settings
        due: dict[tuple[str, str, str], list[tuple[_AlertState, AlertStatus]]] = {}
        for s in states:
            gk = (s.show_id, s.region, s.route)
            if s.ended_at is not None:
                if not show_ended and now - s.ended_at < cfg.cool_off_s:
                    continue
                if s.sent_severity is None:
                    # Over before anyone was told: the report shows it, no page.
                    del self._alerts[s.key]
                    continue
                due.setdefault(gk, []).append((s, AlertStatus.RESOLVED))
            elif s.inhibited:
                continue
            elif (
                s.sent_severity is None
                or _SEVERITY_RANK[s.severity] > _SEVERITY_RANK[s.sent_severity]
                or (s.last_sent is not None and now - s.last_sent >= cfg.repeat_interval_s)
            ):
                due.setdefault(gk, []).append((s, AlertStatus.FIRING))

        out: list[Notification] = []
        for gk, items in sorted(due.items()):
            group = self._groups.setdefault(gk, _GroupState())
            if not show_ended:
                if group.last_sent is None:
                    if group.first_due is None:
                        group.first_due = now
                    if now - group.first_due + TICK_SLACK_S < cfg.group_wait_s:
                        continue
                elif now - group.last_sent + TICK_SLACK_S < cfg.group_interval_s:
                    continue
            alerts: list[Alert] = []
            for s, status in sorted(items, key=lambda it: it[0].key):
                alerts.append(s.to_alert(status))
                if status == AlertStatus.RESOLVED:
                    del self._alerts[s.key]
                else:
                    s.sent_severity = s.severity
                    s.last_sent = now
            group.last_sent = now
            group.first_due = None
            out.append(
                Notification(
                    group_key=f"qosmon:{gk[0]}:{gk[1] or '*'}:{gk[2]}",
                    show_id=show_id, region=gk[1], route=gk[2], alerts=tuple(alerts), ts=now,
                )
            )

        for gk, group in self._groups.items():
            if gk[0] == show_id and gk not in due and group.last_sent is None:
                group.first_due = None  # what was waiting went away: wait afresh
        live_groups = {(s.show_id, s.region, s.route) for s in self._alerts.values()}
        for gk in [g for g in self._groups if g[0] == show_id and g not in live_groups]:
            del self._groups[gk]
        return out
