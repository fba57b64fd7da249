"""Which probe watches which stream: the shows' stream endpoints matched
against a probe's labels and capabilities. Pure: shows and time come in as
arguments.

A show's streams are assigned from ``ASSIGN_LEAD_S`` before its start until
it ends (``end_ts`` set and reached). A probe gets a stream when its labels
match the stream's selectors (see ``ShowStream``) and it can join it (join
kind, a video codec in common). Beyond its ``max_streams`` the earliest
shows win, and the rest is counted, not silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from qosmon.model import (
    AssignedStream,
    ProbeAssignment,
    ProbeRegistration,
    Show,
    ShowStream,
)

# A show is handed out this long before its start, so probes are watching
# (and the first samples are in) when it goes live.
ASSIGN_LEAD_S = 300.0


def show_running(show: Show, now: float) -> bool:
    if show.end_ts is not None and show.end_ts <= now:
        return False
    return show.start_ts - ASSIGN_LEAD_S <= now


def stream_matches(show: Show, stream: ShowStream, reg: ProbeRegistration) -> bool:
    labels, caps = reg.probe, reg.capabilities
    regions = stream.regions or show.regions
    if regions and labels.region not in regions:
        return False
    if stream.isps and labels.isp not in stream.isps:
        return False
    if stream.edge_nodes and labels.edge_node not in stream.edge_nodes:
        return False
    if stream.join not in caps.joins:
        return False
    return any(c in caps.video_codecs for c in stream.video_codecs)


def assign(shows: Iterable[Show], reg: ProbeRegistration, now: float) -> ProbeAssignment:
    matched = [
        AssignedStream(show_id=show.show_id, stream=stream)
        for show in sorted(shows, key=lambda s: (s.start_ts, s.show_id))
        if show_running(show, now)
        for stream in show.streams
        if stream_matches(show, stream, reg)
    ]
    limit = reg.capabilities.max_streams
    return ProbeAssignment(ts=now, streams=matched[:limit],
                           over_capacity=max(0, len(matched) - limit))


@dataclass
class Registered:
    registration: ProbeRegistration
    last_poll_ts: float  # collector clock
    assignment: ProbeAssignment


@dataclass
class ProbeRegistry:
    """The probes that asked for work (latest registration and answer each)
    and a short-lived copy of the shows, so many probes polling cost one
    store read a second. Bounded by the configured probes: only a probe
    token can register."""

    shows_ttl_s: float = 1.0
    probes: dict[str, Registered] = field(default_factory=dict)
    _shows: list[Show] = field(default_factory=list)
    _shows_ts: float | None = None

    def cached_shows(self, now: float) -> list[Show] | None:
        if self._shows_ts is None or now - self._shows_ts > self.shows_ttl_s:
            return None
        return self._shows

    def keep_shows(self, shows: list[Show], now: float) -> None:
        self._shows, self._shows_ts = shows, now

    def poll(self, reg: ProbeRegistration, shows: Iterable[Show], now: float) -> ProbeAssignment:
        answer = assign(shows, reg, now)
        self.probes[reg.probe.probe_id] = Registered(reg, now, answer)
        return answer

    def view(self) -> list[dict[str, object]]:
        return [
            {"probe_id": pid, "labels": r.registration.probe.model_dump(),
             "capabilities": r.registration.capabilities.model_dump(),
             "version": r.registration.version, "last_poll": r.last_poll_ts,
             "streams": [f"{a.show_id}/{a.stream.stream_id}" for a in r.assignment.streams],
             "over_capacity": r.assignment.over_capacity}
            for pid, r in sorted(self.probes.items())
        ]
