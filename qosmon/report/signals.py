"""Probe samples as numpy columns, and time-bucketed summaries for drawing.

A 3-hour show watched by 50 probes is over half a million samples; the report
reads them once into columns and works on arrays from there. Bucketing keeps
each bucket's minimum and maximum so a one-second spike stays visible however
far the chart is zoomed out.
"""

from __future__ import annotations

import contextlib
import gc
import operator
from collections.abc import Iterator, Sequence
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


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
        names = (*_FLOAT_FIELDS, *_INT_FIELDS, "probe_id", "region", "state", "isp", "edge_node")
        # One C-level pass over the models' field dicts: attribute access on
        # half a million pydantic models costs seconds, a dict lookup does not.
        get = operator.itemgetter(*names)
        # Building ~10^6 tuples next to ~10^6 live models sets off full
        # garbage collections over all of them (3x the time); none of these
        # tuples can form a cycle, so collect after instead of during.
        with _gc_paused():
            rows = [get(s.__dict__) for s in samples]
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
            del rows
        col = dict(zip(names, columns, strict=True))
        # np.array turns None into NaN for a float dtype (unknown stays unknown).
        floats = {k: np.array(col[k], dtype=np.float64) for k in _FLOAT_FIELDS}
        ints = {k: np.array(col[k], dtype=np.int64) for k in _INT_FIELDS}
        region_names = list(dict.fromkeys(regions))
        region_names += [r for r in dict.fromkeys(col["region"]) if r not in region_names]
        region_codes = {r: i for i, r in enumerate(region_names)}
        probe_codes = {p: i for i, p in enumerate(dict.fromkeys(col["probe_id"]))}
        labels = {
            p: (r, isp, edge)
            for p, r, isp, edge in zip(col["probe_id"], col["region"], col["isp"],
                                       col["edge_node"], strict=True)
        }
        probe_idx = np.array([probe_codes[p] for p in col["probe_id"]], dtype=np.int64)
        region_idx = np.array([region_codes[r] for r in col["region"]], dtype=np.int64)
        conn = ConnectionState.CONNECTED
        connected = np.array([st == conn for st in col["state"]], dtype=np.bool_)
        order = np.argsort(floats["ts"], kind="stable")
        return cls(
            ts=floats["ts"][order],
            probe_idx=probe_idx[order],
            region_idx=region_idx[order],
            connected=connected[order],
            rtt_ms=floats["rtt_ms"][order],
            loss_pct=floats["loss_pct"][order],
            bitrate_kbps=floats["bitrate_kbps"][order],
            fps=floats["fps"][order],
            no_frame_ms=floats["no_frame_ms"][order],
            chat_rtt_ms=floats["chat_rtt_ms"][order],
            ttff_ms=floats["ttff_ms"][order],
            freeze_ms=floats["freeze_ms"][order],
            freeze_count=ints["freeze_count"][order],
            chat_sent=ints["chat_sent"][order],
            chat_lost=ints["chat_lost"][order],
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
