"""The verdict per region: for each second of the show, was watching from
that region good, degraded or failed?

Pure: takes probe columns, the show's time span and the probe-local windows to
leave out; no store, no clock. Seconds with no usable sample are ``unknown``,
never counted as good.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from qosmon.report.signals import BoolArray, IntArray, ProbeTable

GOOD, DEGRADED, FAILED, UNKNOWN = 0, 1, 2, -1
STATUS_NAMES = {GOOD: "good", DEGRADED: "degraded", FAILED: "failed", UNKNOWN: "unknown"}


class ReportThresholds(BaseModel):
    """Where a second of viewing stops being good. Failed beats degraded.

    "Failed" is the service level broken (the SLO figures diagnosis uses:
    loss > 5 %, RTT >= 250 ms, no frame for 5 s, no connection); "degraded"
    is a viewer-visible blemish short of that (a freeze, a starved
    bitrate, chat not getting through, loss or RTT well above a clean
    path's). A probe counts as bad only after ``min_bad_s`` seconds in a
    row, as diagnosis does, so a one-second blip of a clean path does not
    colour a region.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    loss_failed_pct: float = Field(default=5.0, ge=0, le=100)  # failed if loss > this
    rtt_failed_ms: float = Field(default=250.0, ge=0)  # failed if RTT >= this
    no_frame_failed_ms: float = Field(default=5000.0, ge=0)  # failed if no frame for >= this
    # 1 lost packet in a second of ~100 is 1 %: clean paths blip there.
    loss_degraded_pct: float = Field(default=2.0, ge=0, le=100)  # degraded if loss > this
    # Cross-border RTTs of 100-200 ms are normal for this business.
    rtt_degraded_ms: float = Field(default=200.0, ge=0)  # degraded if RTT >= this
    bitrate_degraded_kbps: float = Field(default=300.0, ge=0)  # degraded if bitrate < this
    chat_rtt_degraded_ms: float = Field(default=1500.0, ge=0)  # degraded if chat slower
    # Any freeze ending in a second, or a lost chat message, makes it degraded.
    min_bad_s: int = Field(default=2, ge=1, le=60)  # seconds in a row before a probe is bad
    # For charts only: frozen share of watch time worth a look.
    freeze_chart_pct: float = Field(default=1.0, ge=0, le=100)
    chat_lost_chart_pct: float = Field(default=30.0, ge=0, le=100)  # diagnosis' lost_ratio
    ttff_ms: float = Field(default=2000.0, ge=0)  # a first frame slower than this is slow
    # A region is as bad as at least this share of its reporting probes.
    min_probe_share: float = Field(default=0.5, gt=0, le=1)
    # A probe second with kernel drops at its sockets, or its loop this late,
    # is the probe's own starvation, left out as diagnosis leaves it out
    # (diagnosis' media.probe_lag_ms).
    probe_lag_ms: float = Field(default=200.0, gt=0)


def sample_status(table: ProbeTable, th: ReportThresholds) -> IntArray:
    """GOOD / DEGRADED / FAILED for each sample (NaN comparisons are false,
    so an unmeasured value never fails nor clears a sample)."""
    with np.errstate(invalid="ignore"):
        failed = (
            ~table.connected
            | (table.loss_pct > th.loss_failed_pct)
            | (table.rtt_ms >= th.rtt_failed_ms)
            | (table.no_frame_ms >= th.no_frame_failed_ms)
        )
        degraded = (
            (table.freeze_count > 0)
            | (table.freeze_ms > 0)
            | (table.stuck_ms > 0)  # a stall while it lasts, not only once it ended
            | (table.loss_pct > th.loss_degraded_pct)
            | (table.rtt_ms >= th.rtt_degraded_ms)
            | (table.bitrate_kbps < th.bitrate_degraded_kbps)
            | (table.chat_lost > 0)
            | (table.chat_rtt_ms > th.chat_rtt_degraded_ms)
        )
    out = np.where(failed, FAILED, np.where(degraded, DEGRADED, GOOD))
    return out.astype(np.int64)


def starved_mask(table: ProbeTable, th: ReportThresholds) -> BoolArray:
    """Samples of seconds in which the probe itself could not keep up: the
    kernel dropped datagrams at its sockets, or its loop ran late. Unknown
    (an older probe) is not starved."""
    with np.errstate(invalid="ignore"):
        out: BoolArray = (table.socket_drops > 0) | (table.probe_lag_ms >= th.probe_lag_ms)
    return out


def excluded_mask(
    table: ProbeTable, windows: list[tuple[str, float, float]]
) -> BoolArray:
    """Samples inside a probe-local problem window (probe_id, start, end)."""
    mask = np.zeros(len(table), np.bool_)
    codes = {p: i for i, p in enumerate(table.probes)}
    for probe, start, end in windows:
        i = codes.get(probe)
        if i is None:
            continue
        mask |= (table.probe_idx == i) & (table.ts >= start) & (table.ts <= end)
    return mask


@dataclass
class RegionVerdict:
    region: str
    seconds: dict[str, int]  # status name -> seconds
    total_s: int
    timeline: IntArray  # status per second of the show

    def minutes(self, status: str) -> float:
        return self.seconds.get(status, 0) / 60.0

    def pct(self, status: str) -> float:
        return 100.0 * self.seconds.get(status, 0) / self.total_s if self.total_s else 0.0

    @property
    def overall(self) -> str:
        """One word for the headline: the worst state that lasted a minute
        or more (1 % of the show for short shows), else good."""
        floor = min(60, max(5, self.total_s // 100))
        for name in ("failed", "degraded"):
            if self.seconds.get(name, 0) >= floor:
                return name
        if self.seconds.get("good", 0) == 0:
            return "unknown"
        return "good"


def _hold(bad: BoolArray, min_run: int) -> BoolArray:
    """Keep only runs of True at least ``min_run`` long, along the last axis."""
    if min_run <= 1 or not bad.size:
        return bad
    rows, n = bad.shape
    flat = np.concatenate([np.zeros((rows, 1), np.bool_), bad, np.zeros((rows, 1), np.bool_)],
                          axis=1).ravel().astype(np.int8)
    d = np.diff(flat)
    # d[i] is the step from flat[i] to flat[i + 1]: runs are [start, end).
    starts = np.flatnonzero(d == 1) + 1
    ends = np.flatnonzero(d == -1) + 1
    keep = np.zeros(flat.size + 1, np.int64)
    long = (ends - starts) >= min_run
    np.add.at(keep, starts[long], 1)
    np.add.at(keep, ends[long], -1)
    mask = np.cumsum(keep)[:-1].astype(np.bool_).reshape(rows, n + 2)
    out: BoolArray = mask[:, 1:-1]
    return out


def region_verdicts(
    table: ProbeTable,
    start_ts: float,
    end_ts: float,
    regions: list[str],
    th: ReportThresholds,
    exclude: BoolArray | None = None,
) -> list[RegionVerdict]:
    """Per region, per second of [start_ts, end_ts): the worst state that at
    least ``min_probe_share`` of the region's reporting probes were in.

    Seconds are ``table.sec`` (each probe on its own aligned grid), so a
    probe whose samples jitter around its second still reports every second.
    """
    n_s = max(1, int(np.rint(end_ts - start_ts)))
    status = sample_status(table, th)
    sec = table.sec
    keep = (sec >= 0) & (sec < n_s)
    if exclude is not None:
        keep &= ~exclude
    n_probes = max(1, len(table.probes))
    out = []
    for name in regions:
        try:
            r = table.regions.index(name)
        except ValueError:
            r = -1
        m = keep & (table.region_idx == r)
        # Worst status per (probe, second); -1 = no sample.
        grid = np.full(n_probes * n_s, UNKNOWN, np.int64)
        np.maximum.at(grid, table.probe_idx[m] * n_s + sec[m], status[m])
        grid2 = grid.reshape(n_probes, n_s)
        failed = _hold(grid2 == FAILED, th.min_bad_s)
        bad = _hold(grid2 >= DEGRADED, th.min_bad_s)
        reporting = (grid2 >= GOOD).sum(axis=0)
        n_failed = failed.sum(axis=0)
        n_bad = bad.sum(axis=0)
        need = th.min_probe_share * reporting
        timeline = np.where(
            reporting == 0,
            UNKNOWN,
            np.where(n_failed >= need, FAILED, np.where(n_bad >= need, DEGRADED, GOOD)),
        ).astype(np.int64)
        seconds = {STATUS_NAMES[k]: int((timeline == k).sum()) for k in STATUS_NAMES}
        out.append(RegionVerdict(region=name, seconds=seconds, total_s=n_s, timeline=timeline))
    return out
