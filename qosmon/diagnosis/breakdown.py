"""Ratio breakdowns the engine localizes: conversion by region x SKU, and the
platform's viewer-side failure rate and rebuffer ratio by region, ISP, CDN,
device and app version.

Conversion: each leaf is one region and one SKU, ``a`` its orders, ``b`` the region's
viewer-seconds, so ``a/b`` is the SKU's conversion there. What happened in a
window is compared with the ``reference_s`` seconds that ended ``gap_s``
before it, and ``localize`` (the same function ``qosmon localize`` runs) names
the combinations whose conversion moved, at the viewers actually there: a
region that lost half its audience and half its orders has not converted
worse, a SKU nobody can buy any more has.

The viewer-side aggregates work the same way: failures/sessions and stalled/
watched seconds per audience slice, now against before, so a big audience is
diagnosed from its own numbers.

Pure: the series in, leaves or findings out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from qosmon.diagnosis.business import RegionBusiness
from qosmon.diagnosis.localize import Finding, LocalizeParams, localize
from qosmon.model import ViewerAggregate

DIMS = ("region", "sku")


@dataclass(frozen=True)
class RatioLeaves:
    dims: tuple[str, ...]
    leaves: list[dict[str, str]]
    real_a: list[float]
    predict_a: list[float]
    real_b: list[float]
    predict_b: list[float]

    def csv_rows(self) -> list[list[str]]:
        """The leaves as ``qosmon localize`` reads them, header first."""
        rows = [[*self.dims, "real_a", "predict_a", "real_b", "predict_b"]]
        for i, leaf in enumerate(self.leaves):
            nums = (self.real_a[i], self.predict_a[i], self.real_b[i], self.predict_b[i])
            rows.append([*(leaf[d] for d in self.dims), *(f"{x:.6g}" for x in nums)])
        return rows


def conversion_leaves(
    business: Mapping[str, RegionBusiness],
    start: int,
    end: int,
    *,
    reference_s: int = 120,
    gap_s: int = 5,
    skip: Callable[[int], bool] = lambda s: False,
) -> RatioLeaves | None:
    """Orders per viewer-second of every region x SKU in seconds
    ``start..end`` and in the reference before, seconds ``skip`` names left
    out of the reference. None without per-SKU orders and viewers."""
    ref = [t for t in range(start - gap_s - reference_s, start - gap_s) if not skip(t)]
    now = range(start, end + 1)
    leaves: list[dict[str, str]] = []
    a: list[float] = []
    pa: list[float] = []
    b: list[float] = []
    pb: list[float] = []
    for region, rb in sorted(business.items()):
        if not region or not rb.sku_orders:
            continue
        viewers_now = float(sum(rb.viewers.get(t, 0) for t in now))
        viewers_ref = float(sum(rb.viewers.get(t, 0) for t in ref))
        if viewers_ref <= 0:
            continue
        for sku, per in sorted(rb.sku_orders.items()):
            leaves.append({"region": region, "sku": sku})
            a.append(float(sum(per.get(t, 0) for t in now)))
            pa.append(float(sum(per.get(t, 0) for t in ref)))
            b.append(viewers_now)
            pb.append(viewers_ref)
    if not leaves or sum(pa) <= 0:
        return None
    return RatioLeaves(DIMS, leaves, a, pa, b, pb)


def where_ratio_moved(
    leaves: RatioLeaves, params: LocalizeParams | None = None
) -> list[Finding]:
    return localize(
        leaves.leaves,
        leaves.real_a,
        leaves.predict_a,
        list(leaves.dims),
        real_b=leaves.real_b,
        predict_b=leaves.predict_b,
        params=params,
    )


class ViewerMeasure(StrEnum):
    """Ratios of the platform's viewer-side aggregates."""

    FAILURE_RATE = "failure_rate"  # failures / sessions
    REBUFFER_RATIO = "rebuffer_ratio"  # stalled seconds / watched seconds


VIEWER_DIMS = ("region", "isp", "cdn", "device", "app_version")


def viewer_leaves(
    aggregates: Sequence[ViewerAggregate],
    start: float,
    end: float,
    measure: ViewerMeasure,
    *,
    reference_s: float = 600.0,
) -> RatioLeaves | None:
    """The measure per audience slice over intervals ending in ``start..end``
    against those ending in the ``reference_s`` before ``start``. Dimensions
    no slice is broken down by are left out. None without a reference."""
    now: dict[tuple[str, ...], list[float]] = {}
    ref: dict[tuple[str, ...], list[float]] = {}
    for x in aggregates:
        if start < x.ts <= end:
            into = now
        elif start - reference_s < x.ts <= start:
            into = ref
        else:
            continue
        key = (x.region, x.isp, x.cdn, x.device, x.app_version)
        if measure == ViewerMeasure.FAILURE_RATE:
            a, b = float(x.failures), float(x.sessions)
        else:
            a, b = x.stalled_s, x.watched_s
        sums = into.setdefault(key, [0.0, 0.0])
        sums[0] += a
        sums[1] += b
    if not now or not ref or sum(v[1] for v in ref.values()) <= 0:
        return None
    keys = sorted(set(now) | set(ref))
    used = [j for j in range(len(VIEWER_DIMS)) if any(k[j] for k in keys)]
    dims = tuple(VIEWER_DIMS[j] for j in used) or ("region",)
    leaves = [{VIEWER_DIMS[j]: k[j] for j in used} or {"region": ""} for k in keys]
    zero = [0.0, 0.0]
    return RatioLeaves(
        dims,
        leaves,
        [now.get(k, zero)[0] for k in keys],
        [ref.get(k, zero)[0] for k in keys],
        [now.get(k, zero)[1] for k in keys],
        [ref.get(k, zero)[1] for k in keys],
    )
