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
    "freeze_ms", "stuck_ms", "received_kbps", "rtx_kbps", "audio_stalled_ms", "audio_loss_pct",
    "probe_lag_ms", "socket_drops",
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
    # Picture stuck, counted while a stall lasts; ``frozen_ms`` is what the
    # report counts as frozen (see ``frozen_per_second``).
    stuck_ms: FloatArray
    received_kbps: FloatArray
    rtx_kbps: FloatArray
    audio_stalled_ms: FloatArray
    audio_loss_pct: FloatArray
    frozen_ms: FloatArray
    # The probe's own health (NaN: not reported): its loop's lateness, and
    # datagrams the kernel dropped at its sockets (a count, as a float so
    # unknown stays NaN).
    probe_lag_ms: FloatArray
    socket_drops: FloatArray
    chat_sent: IntArray
    chat_lost: IntArray
    sec: IntArray  # second of the show, aligned per probe (see second_slots)
    probes: list[str]
    regions: list[str]
    # probe -> (region, isp, edge_node) as last seen
    probe_labels: dict[str, tuple[str, str, str]]

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_samples(
        cls, samples: Sequence[ProbeSample], regions: Sequence[str] = (),
        t0: float | None = None,
    ) -> ProbeTable:
        """``t0``: the show start that seconds count from (default: one
        second before the first sample)."""
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
        ts = floats["ts"][order]
        p_sorted = probe_idx[order]
        start = t0 if t0 is not None else (float(np.floor(ts[0])) - 1 if len(ts) else 0.0)
        return cls(
            ts=ts,
            probe_idx=p_sorted,
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
            stuck_ms=floats["stuck_ms"][order],
            received_kbps=floats["received_kbps"][order],
            rtx_kbps=floats["rtx_kbps"][order],
            audio_stalled_ms=floats["audio_stalled_ms"][order],
            audio_loss_pct=floats["audio_loss_pct"][order],
            frozen_ms=frozen_per_second(floats["freeze_ms"][order], floats["stuck_ms"][order],
                                        p_sorted),
            probe_lag_ms=floats["probe_lag_ms"][order],
            socket_drops=floats["socket_drops"][order],
            chat_sent=ints["chat_sent"][order],
            chat_lost=ints["chat_lost"][order],
            sec=second_slots(ts, p_sorted, start),
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
            "stuck_ms", "received_kbps", "rtx_kbps", "audio_stalled_ms", "audio_loss_pct",
            "frozen_ms", "probe_lag_ms", "socket_drops", "chat_sent", "chat_lost", "sec",
        ):
            kw[name] = getattr(self, name)[mask]
        return ProbeTable(
            **kw, probes=self.probes, regions=self.regions, probe_labels=self.probe_labels
        )


def frozen_per_second(freeze_ms: FloatArray, stuck_ms: FloatArray,
                      probe_idx: IntArray) -> FloatArray:
    """Frozen time per sample, in ms: the picture-stuck time, counted while a
    stall lasts, for probes that report it (a 24 s stall shows over its 24
    seconds, not in the second it ends); for older probes, which report
    only freezes that ended, the freeze time of that second. A probe
    reports stuck time if any of its samples holds some: otherwise the two
    are the same (nothing stalled)."""
    n = int(probe_idx.max()) + 1 if len(probe_idx) else 0
    stuck = np.nan_to_num(stuck_ms, nan=0.0)
    reports = np.bincount(probe_idx, weights=stuck, minlength=n) > 0 if n else np.zeros(0, bool)
    out: FloatArray = np.where(reports[probe_idx] if n else np.zeros(0, bool), stuck,
                               np.nan_to_num(freeze_ms, nan=0.0))
    return out


@dataclass
class Buckets:
    """A series summarised per time bucket; empty buckets are NaN."""

    t: FloatArray  # bucket start times
    mean: FloatArray
    lo: FloatArray
    hi: FloatArray
    n: IntArray  # values in the bucket
    width_s: float = 0.0


# Bucket widths a reader can name ("per 10 s", "per 5 min").
NICE_WIDTHS_S = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)


def nice_width(span_s: float, max_buckets: int, min_s: int = 1) -> int:
    """The narrowest whole-second bucket width >= ``min_s`` that cuts
    ``span_s`` into at most ``max_buckets`` buckets."""
    need = span_s / max(1, max_buckets)
    for w in NICE_WIDTHS_S:
        if w >= min_s and w >= need:
            return w
    return int(np.ceil(need))


def second_slots(ts: FloatArray, keys: IntArray, t0: float) -> IntArray:
    """The whole second of the show (0 = the first) each sample belongs to.

    Each probe stamps its samples on its own sub-second phase (t0 + k +
    0.07 for one, + 0.93 for another) with some jitter. Cutting time at
    fixed edges would put two samples of a probe in one bucket and none in
    the next, and charts would break into dots; so each series (``keys``:
    one per probe or region) is put on its own second grid first: its phase
    is the circular mean of its sub-second offsets, and each sample goes to
    the nearest second of that grid.
    """
    if not len(ts):
        return np.zeros(0, np.int64)
    rel = ts - t0
    ang = 2 * np.pi * np.mod(rel, 1.0)
    n = int(keys.max()) + 1
    phase = np.mod(np.arctan2(np.bincount(keys, np.sin(ang), n),
                              np.bincount(keys, np.cos(ang), n)) / (2 * np.pi), 1.0)
    # A sample covers the second before ``ts``; it belongs to the show
    # second holding most of it (the one its midpoint falls in).
    p = phase[keys]
    out: IntArray = np.rint(rel - p).astype(np.int64) - 1 + (p >= 0.5)
    return out


@dataclass
class Grid:
    """Seconds [first_s, first_s + n_s) of the show in buckets of
    ``width_s`` whole seconds; bucket edges fall on whole seconds."""

    t0: float  # the show start: second 0 starts here
    first_s: int
    n_s: int
    width_s: int

    @property
    def n(self) -> int:
        return max(1, -(-self.n_s // self.width_s))

    @property
    def starts(self) -> FloatArray:
        out: FloatArray = self.t0 + self.first_s + self.width_s * np.arange(self.n, dtype=float)
        return out

    def index(self, sec: IntArray) -> tuple[BoolArray, IntArray]:
        """(inside the grid, bucket index) for each second."""
        rel = sec - self.first_s
        ok: BoolArray = (rel >= 0) & (rel < self.n_s)
        return ok, np.where(ok, rel // self.width_s, 0)


def grid_for(t0: float, t1: float, max_buckets: int, show_t0: float | None = None) -> Grid:
    """A grid over [t0, t1) counted in seconds of the show that starts at
    ``show_t0`` (default t0)."""
    origin = t0 if show_t0 is None else show_t0
    first = int(np.floor(t0 - origin + 1e-9))
    n_s = max(1, int(np.ceil(t1 - origin - 1e-9)) - first)
    return Grid(origin, first, n_s, nice_width(n_s, max_buckets))


def bucket_series(sec: IntArray, values: FloatArray, grid: Grid) -> Buckets:
    """Mean, min and max of ``values`` per bucket of ``grid``; NaN values
    (unknown) are left out, not counted as zero."""
    inside, b = grid.index(sec)
    ok = inside & ~np.isnan(values)
    v = values[ok]
    b = b[ok]
    n = grid.n
    count = np.bincount(b, minlength=n).astype(np.int64)
    total = np.bincount(b, weights=v, minlength=n)
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, b, v)
    np.maximum.at(hi, b, v)
    empty = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    mean[empty] = np.nan
    lo[empty] = np.nan
    hi[empty] = np.nan
    return Buckets(t=grid.starts, mean=mean, lo=lo, hi=hi, n=count, width_s=grid.width_s)


def bucket_ratio(
    sec: IntArray, num: FloatArray, den: FloatArray, grid: Grid, scale: float = 100.0,
) -> Buckets:
    """sum(num)/sum(den) per bucket (e.g. chat messages lost in % of sent);
    buckets with no denominator are NaN. lo/hi are the per-sample extremes."""
    inside, b = grid.index(sec)
    ok = inside & (den > 0)
    b = b[ok]
    n = grid.n
    s_num = np.bincount(b, weights=num[ok], minlength=n)
    s_den = np.bincount(b, weights=den[ok], minlength=n)
    per = scale * num[ok] / den[ok]
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, b, per)
    np.maximum.at(hi, b, per)
    empty = s_den == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = scale * s_num / s_den
    mean[empty] = np.nan
    lo[empty] = np.nan
    hi[empty] = np.nan
    return Buckets(t=grid.starts, mean=mean, lo=lo, hi=hi, n=np.bincount(b, minlength=n),
                   width_s=grid.width_s)


def bucket_sum(sec: IntArray, values: FloatArray, grid: Grid) -> FloatArray:
    """Sum of ``values`` per bucket (counts such as orders); NaN is left out."""
    inside, b = grid.index(sec)
    ok = inside & ~np.isnan(values)
    out: FloatArray = np.bincount(b[ok], weights=values[ok], minlength=grid.n)
    return out


def per_second(sec: IntArray, values: FloatArray, n_s: int) -> FloatArray:
    """The last known value of each second of [0, n_s), carried forward over
    gaps (a level such as viewers online holds until the next report);
    NaN before the first report."""
    out = np.full(n_s, np.nan)
    ok = (sec >= 0) & (sec < n_s) & ~np.isnan(values)
    out[sec[ok]] = values[ok]  # later samples win: input is in time order
    idx = np.where(~np.isnan(out), np.arange(n_s), -1)
    np.maximum.accumulate(idx, out=idx)
    filled: FloatArray = np.where(idx >= 0, out[np.maximum(idx, 0)], np.nan)
    return filled


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
