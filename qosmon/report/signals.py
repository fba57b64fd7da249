"""Probe samples as numpy columns, and time-bucketed summaries for drawing.

A 3-hour show watched by 50 probes is over half a million samples; the report
reads them once into columns and works on arrays from there. Bucketing keeps
each bucket's minimum and maximum so a one-second spike stays visible however
far the chart is zoomed out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qosmon.model import ConnectionState, ProbeSample

# numpy's dtype-precise typing fights every arithmetic result; the names
# document intent (float seconds / ints / masks) without that noise.
FloatArray = NDArray[Any]
IntArray = NDArray[Any]
BoolArray = NDArray[Any]

# Columns read from each sample. Optional numbers become NaN (unknown).
_FLOAT_FIELDS = (
    "ts", "rtt_ms", "loss_pct", "bitrate_kbps", "fps", "no_frame_ms", "chat_rtt_ms", "ttff_ms",
    "freeze_ms",
)
_INT_FIELDS = ("freeze_count", "chat_sent", "chat_lost")


@dataclass
class ProbeTable:
    """One row per sample, sorted by time."""

    ts: FloatArray
    probe_idx: IntArray  # index into ``probes``
    region_idx: IntArray  # index into ``regions``
    connected: BoolArray
    rtt_ms: FloatArray
    loss_pct: FloatArray
    bitrate_kbps: FloatArray
    fps: FloatArray
    no_frame_ms: FloatArray
    chat_rtt_ms: FloatArray
    ttff_ms: FloatArray
    freeze_ms: FloatArray
    freeze_count: IntArray
    chat_sent: IntArray
    chat_lost: IntArray
    probes: list[str]
    regions: list[str]
    # probe -> (region, isp, edge_node) as last seen
    probe_labels: dict[str, tuple[str, str, str]]

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_samples(
        cls, samples: Sequence[ProbeSample], regions: Sequence[str] = ()
    ) -> ProbeTable:
        n = len(samples)
        cols: dict[str, np.ndarray] = {}
        for name in _FLOAT_FIELDS:
            # np.array turns None into NaN for a float dtype.
            cols[name] = np.array([getattr(s, name) for s in samples], dtype=np.float64)
        for name in _INT_FIELDS:
            cols[name] = np.fromiter((getattr(s, name) for s in samples), np.int64, n)
        region_names = list(dict.fromkeys(regions))
        region_codes = {r: i for i, r in enumerate(region_names)}
        probe_codes: dict[str, int] = {}
        labels: dict[str, tuple[str, str, str]] = {}
        probe_idx = np.empty(n, np.int64)
        region_idx = np.empty(n, np.int64)
        connected = np.empty(n, np.bool_)
        conn = ConnectionState.CONNECTED
        for i, s in enumerate(samples):
            p = probe_codes.get(s.probe_id)
            if p is None:
                p = probe_codes[s.probe_id] = len(probe_codes)
            if s.region not in region_codes:
                region_codes[s.region] = len(region_codes)
                region_names.append(s.region)
            probe_idx[i] = p
            region_idx[i] = region_codes[s.region]
            connected[i] = s.state == conn
            labels[s.probe_id] = (s.region, s.isp, s.edge_node)
        order = np.argsort(cols["ts"], kind="stable")
        return cls(
            ts=cols["ts"][order],
            probe_idx=probe_idx[order],
            region_idx=region_idx[order],
            connected=connected[order],
            rtt_ms=cols["rtt_ms"][order],
            loss_pct=cols["loss_pct"][order],
            bitrate_kbps=cols["bitrate_kbps"][order],
            fps=cols["fps"][order],
            no_frame_ms=cols["no_frame_ms"][order],
            chat_rtt_ms=cols["chat_rtt_ms"][order],
            ttff_ms=cols["ttff_ms"][order],
            freeze_ms=cols["freeze_ms"][order],
            freeze_count=cols["freeze_count"][order],
            chat_sent=cols["chat_sent"][order],
            chat_lost=cols["chat_lost"][order],
            probes=list(probe_codes),
            regions=region_names,
            probe_labels=labels,
        )

    def take(self, mask: BoolArray) -> ProbeTable:
        """The rows where ``mask`` is true (same probe/region indexes)."""
        kw = {}
        for name in (
            "ts", "probe_idx", "region_idx", "connected", "rtt_ms", "loss_pct", "bitrate_kbps",
            "fps", "no_frame_ms", "chat_rtt_ms", "ttff_ms", "freeze_ms", "freeze_count",
            "chat_sent", "chat_lost",
        ):
            kw[name] = getattr(self, name)[mask]
        return ProbeTable(
            **kw, probes=self.probes, regions=self.regions, probe_labels=self.probe_labels
        )


@dataclass
class Buckets:
    """A series summarised per time bucket; empty buckets are NaN."""

    t: FloatArray  # bucket start times
    mean: FloatArray
    lo: FloatArray
    hi: FloatArray
    n: IntArray  # values in the bucket


def bucket_series(
    ts: FloatArray, values: FloatArray, t0: float, t1: float, n_buckets: int
) -> Buckets:
    """Mean, min and max of ``values`` per equal time bucket of [t0, t1];
    NaN values (unknown) are left out, not counted as zero."""
    n_buckets = max(1, n_buckets)
    width = max((t1 - t0) / n_buckets, 1e-9)
    edges = t0 + width * np.arange(n_buckets)
    ok = ~np.isnan(values) & (ts >= t0) & (ts <= t1)
    v = values[ok]
    b = np.minimum(((ts[ok] - t0) / width).astype(np.int64), n_buckets - 1)
    count = np.bincount(b, minlength=n_buckets).astype(np.int64)
    total = np.bincount(b, weights=v, minlength=n_buckets)
    lo = np.full(n_buckets, np.inf)
    hi = np.full(n_buckets, -np.inf)
    np.minimum.at(lo, b, v)
    np.maximum.at(hi, b, v)
    empty = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    mean[empty] = np.nan
    lo[empty] = np.nan
    hi[empty] = np.nan
    return Buckets(t=edges, mean=mean, lo=lo, hi=hi, n=count)


def bucket_ratio(
    ts: FloatArray, num: FloatArray, den: FloatArray, t0: float, t1: float, n_buckets: int,
    scale: float = 100.0,
) -> Buckets:
    """sum(num)/sum(den) per bucket (e.g. chat messages lost in % of sent);
    buckets with no denominator are NaN. lo/hi are the per-second extremes."""
    n_buckets = max(1, n_buckets)
    width = max((t1 - t0) / n_buckets, 1e-9)
    edges = t0 + width * np.arange(n_buckets)
    ok = (den > 0) & (ts >= t0) & (ts <= t1)
    b = np.minimum(((ts[ok] - t0) / width).astype(np.int64), n_buckets - 1)
    s_num = np.bincount(b, weights=num[ok], minlength=n_buckets)
    s_den = np.bincount(b, weights=den[ok], minlength=n_buckets)
    per = scale * num[ok] / den[ok]
    lo = np.full(n_buckets, np.inf)
    hi = np.full(n_buckets, -np.inf)
    np.minimum.at(lo, b, per)
    np.maximum.at(hi, b, per)
    empty = s_den == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = scale * s_num / s_den
    mean[empty] = np.nan
    lo[empty] = np.nan
    hi[empty] = np.nan
    return Buckets(t=edges, mean=mean, lo=lo, hi=hi, n=np.bincount(b, minlength=n_buckets))


def session_ttffs(table: ProbeTable) -> tuple[FloatArray, IntArray]:
    """One time-to-first-frame per viewing session: the value is repeated on
    every sample of a session, so a session starts where a probe's value
    changes. Returns (ttff_ms, region_idx)."""
    order = np.lexsort((table.ts, table.probe_idx))
    p = table.probe_idx[order]
    v = table.ttff_ms[order]
    r = table.region_idx[order]
    known = ~np.isnan(v)
    prev_v = np.concatenate(([np.nan], v[:-1]))
    prev_p = np.concatenate(([-1], p[:-1]))
    new = known & ((prev_p != p) | np.isnan(prev_v) | (prev_v != v))
    return v[new], r[new]
