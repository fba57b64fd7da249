"""The platform's viewer-side aggregates as the engine keeps them.

Each report is one audience slice (region x ISP x CDN x device x app
version) over an interval. They are kept as columns (time, slice code and
the four counts), in time order, so the failure rate and the rebuffer ratio
of every slice over an incident's window and over its reference are array
sums: a big audience sends a hundred thousand slices a minute, and walking
them one by one on every recomputation took the collector's event loop
about 0.4 s each time.

Bounds: the last ``keep_s`` (an hour: more than any incident's window and
its reference) and at most ``max_rows`` reports; a breakdown handed to the
localizer holds at most ``max_leaves`` slices, those with the most volume
(sessions or watched seconds) over the two windows. Smaller slices are left
out: a slice with little volume cannot stand out on a noisy ratio anyway,
though a cause spread over many of them is then seen only in what the
kept slices show of it.

Pure: reports in, leaves out.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from qosmon.diagnosis.breakdown import VIEWER_DIMS, RatioLeaves, ViewerMeasure, usual_ratios
from qosmon.model import ViewerAggregate

MAX_ROWS = 500_000
KEEP_S = 3600.0
# The localizer's measured size: 20,000 leaves x 5 dimensions in a few
# hundredths of a second.
MAX_LEAVES = 20_000

# Column of each count in ``_val``; a measure is (numerator, denominator).
_COLUMNS = {
    ViewerMeasure.FAILURE_RATE: (0, 1),  # failures / sessions
    ViewerMeasure.REBUFFER_RATIO: (2, 3),  # stalled / watched seconds
}

Key = tuple[str, str, str, str, str]
# Field reads in C: a batch is up to a hundred thousand reports.
_slice_of = operator.attrgetter("region", "isp", "cdn", "device", "app_version")
_ts_of = operator.attrgetter("ts")
_counts_of = operator.attrgetter("failures", "sessions", "stalled_s", "watched_s")


class ViewerSlices:
    def __init__(
        self, max_rows: int = MAX_ROWS, keep_s: float = KEEP_S, max_leaves: int = MAX_LEAVES
    ) -> None:
        self.max_rows = max_rows
        self.keep_s = keep_s
        self.max_leaves = max_leaves
        self._codes: dict[Key, int] = {}
        self._keys: list[Key] = []
        self._ts: npt.NDArray[np.float64] = np.empty(0)
        self._code: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._val: npt.NDArray[np.float64] = np.empty((0, 4))
        # Reports handed over but not yet in the columns (see ``absorb``).
        self._pending: list[ViewerAggregate] = []
        # Changes whenever reports are added: what was computed from an
        # older version may be out of date.
        self.version = 0

    def __len__(self) -> int:
        return len(self._ts)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, samples: Iterable[ViewerAggregate]) -> None:
        """Take these reports (any order); they count once ``absorb`` has
        put them in the columns. Arrival only keeps them: it happens on the
        collector's event loop, a hundred thousand at a time. At most
        ``max_rows`` wait (the oldest handed over are dropped first)."""
        self._pending.extend(samples)
        over = len(self._pending) - self.max_rows
        if over > 0:
            del self._pending[:over]

    def absorb(self, limit: int | None = None) -> int:
        """Put up to ``limit`` waiting reports (all: None) in the columns,
        in the order they were handed over; returns how many."""
        rows = self._pending[:limit]
        del self._pending[: len(rows)]
        if not rows:
            return 0
        codes_of = self._codes
        codes = []
        for key in map(_slice_of, rows):
            c = codes_of.get(key)
            if c is None:
                c = codes_of[key] = len(self._keys)
                self._keys.append(key)
            codes.append(c)
        ts = list(map(_ts_of, rows))
        vals = list(map(_counts_of, rows))
        new_ts = np.asarray(ts, dtype=np.float64)
        in_order = bool(np.all(new_ts[1:] >= new_ts[:-1])) and (
            not len(self._ts) or new_ts[0] >= self._ts[-1]
        )
        self._ts = np.concatenate([self._ts, new_ts])
        self._code = np.concatenate([self._code, np.asarray(codes, dtype=np.int64)])
        self._val = np.concatenate([self._val, np.asarray(vals, dtype=np.float64)])
        if not in_order:
            # Stable: reports with the same time stay in arrival order.
            order = np.argsort(self._ts, kind="stable")
            self._ts, self._code, self._val = self._ts[order], self._code[order], self._val[order]
        self._prune()
        self.version += 1
        return len(rows)

    def _prune(self) -> None:
        cut = int(np.searchsorted(self._ts, self._ts[-1] - self.keep_s, side="left"))
        cut = max(cut, len(self._ts) - self.max_rows)
        if cut > 0:
            self._ts, self._code, self._val = (
                self._ts[cut:], self._code[cut:], self._val[cut:])
        # Slices no kept report names any more are forgotten, so the table
        # of slice names is bounded by the reports kept.
        if len(self._keys) > 2 * max(len(self._ts), 1024):
            used, inv = np.unique(self._code, return_inverse=True)
            self._keys = [self._keys[int(c)] for c in used]
            self._codes = {k: i for i, k in enumerate(self._keys)}
            self._code = inv.astype(np.int64).reshape(-1)

    def leaves(
        self, start: float, end: float, measure: ViewerMeasure, *, reference_s: float = 600.0
    ) -> RatioLeaves | None:
        """The measure per audience slice over reports ending in
        ``start..end`` against those ending in the ``reference_s`` before
        ``start``. Dimensions no slice is broken down by are left out. None
        without a reference."""
        ts = self._ts
        lo = int(np.searchsorted(ts, start - reference_s, side="right"))
        mid = int(np.searchsorted(ts, start, side="right"))
        hi = int(np.searchsorted(ts, end, side="right"))
        if mid <= lo or hi <= mid:
            return None
        ja, jb = _COLUMNS[measure]
        n = len(self._keys)
        code_ref, code_now = self._code[lo:mid], self._code[mid:hi]
        ref_a, ref_b, now_a, now_b = (
            np.bincount(codes, self._val[rows, j], n).astype(np.float64)
            for codes, rows, j in (
                (code_ref, slice(lo, mid), ja),
                (code_ref, slice(lo, mid), jb),
                (code_now, slice(mid, hi), ja),
                (code_now, slice(mid, hi), jb),
            )
        )
        if ref_b.sum() <= 0:
            return None
        present = np.flatnonzero(np.bincount(self._code[lo:hi], None, n))
        if len(present) > self.max_leaves:
            volume = (ref_b + now_b)[present]
            present = present[np.argsort(-volume, kind="stable")[: self.max_leaves]]
        # In the order of the slices' names, whatever order they arrived in
        # (sorting the name tuples themselves took most of the time).
        keys = [self._keys[c] for c in present.tolist()]
        order = np.argsort(np.array(["\x1f".join(k) for k in keys]), kind="stable")
        keys = [keys[i] for i in order.tolist()]
        idx = present[order]
        used = [j for j in range(len(VIEWER_DIMS)) if any(k[j] for k in keys)]
        dims = tuple(VIEWER_DIMS[j] for j in used) or ("region",)
        leaves = [{VIEWER_DIMS[j]: k[j] for j in used} or {"region": ""} for k in keys]
        # Each slice at the usual ratio of all unless its own reference
        # departs from it beyond counting noise: most slices are small.
        rates = usual_ratios(ref_a[idx], ref_b[idx])
        return RatioLeaves(
            dims,
            leaves,
            now_a[idx].tolist(),
            (rates * ref_b[idx]).tolist(),
            now_b[idx].tolist(),
            ref_b[idx].tolist(),
        )
