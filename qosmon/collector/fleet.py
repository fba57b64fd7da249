"""The fleet view: which probes exist, which are up, how far their clocks are
off. Pure: times come in as arguments.

Clock offset is ``received_ts - probe_ts`` over heartbeats and batch send
times: the true offset plus the network delay, which is small and positive.
The median of the last observations keeps one slow request or one retried
(old) batch from moving it.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from qosmon.model import Heartbeat, ProbeLabels

OFFSET_WINDOW = 31


@dataclass
class ProbeRecord:
    probe_id: str
    labels: ProbeLabels | None = None
    version: str = ""
    streams: list[str] = field(default_factory=list)
    last_heartbeat_ts: float | None = None  # collector clock
    last_seen_ts: float | None = None  # collector clock, heartbeat or batch
    offsets_s: deque[float] = field(default_factory=lambda: deque(maxlen=OFFSET_WINDOW))
    samples_received: int = 0
    batches_received: int = 0
    dropped_samples: int = 0
    spool_error: str = ""  # from the last heartbeat: the probe's spool failing


class Fleet:
    def __init__(self, known_probe_ids: list[str], heartbeat_interval_s: float) -> None:
        self.heartbeat_interval_s = heartbeat_interval_s
        self._probes = {pid: ProbeRecord(pid) for pid in known_probe_ids}

    def _record(self, probe_id: str) -> ProbeRecord:
        rec = self._probes.get(probe_id)
        if rec is None:
            rec = self._probes[probe_id] = ProbeRecord(probe_id)
        return rec

    def on_heartbeat(self, hb: Heartbeat, received_ts: float) -> None:
        rec = self._record(hb.probe.probe_id)
        rec.labels = hb.probe
        rec.version = hb.version
        rec.streams = list(hb.streams)
        rec.spool_error = hb.spool_error
        rec.last_heartbeat_ts = received_ts
        rec.last_seen_ts = received_ts
        rec.offsets_s.append(received_ts - hb.ts)

    def on_batch(
        self, probe_id: str, sent_ts: float, received_ts: float, n_samples: int, dropped: int
    ) -> None:
        rec = self._record(probe_id)
        rec.last_seen_ts = received_ts
        rec.offsets_s.append(received_ts - sent_ts)
        rec.samples_received += n_samples
        rec.batches_received += 1
        rec.dropped_samples += dropped

    def is_up(self, rec: ProbeRecord, now: float) -> bool:
        return (
            rec.last_heartbeat_ts is not None
            and now - rec.last_heartbeat_ts <= 3 * self.heartbeat_interval_s
        )

    def up_count(self, now: float) -> int:
        return sum(self.is_up(r, now) for r in self._probes.values())

    def view(self, now: float) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for pid in sorted(self._probes):
            rec = self._probes[pid]
            offset_ms = (
                round(statistics.median(rec.offsets_s) * 1000.0, 1) if rec.offsets_s else None
            )
            out.append(
                {
                    "probe_id": pid,
                    "labels": rec.labels.model_dump() if rec.labels else None,
                    "version": rec.version,
                    "streams": rec.streams,
                    "last_seen": rec.last_seen_ts,
                    "last_heartbeat": rec.last_heartbeat_ts,
                    "up": self.is_up(rec, now),
                    "clock_offset_ms": offset_ms,
                    "samples_received": rec.samples_received,
                    "batches_received": rec.batches_received,
                    "dropped_samples": rec.dropped_samples,
                    "spool_error": rec.spool_error,
                }
            )
        return out
