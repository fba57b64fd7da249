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
diagnosed from its own numbers (``viewer_slices.py`` keeps them and makes
their leaves).

Pure: the series in, leaves or findings out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from qosmon.diagnosis.business import RegionBusiness
from qosmon.diagnosis.localize import Finding, LocalizeParams, localize

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


# A leaf keeps its own usual ratio only when its reference departs from the
# pooled one by more than this many counting-noise units (about p < 0.001).
_OWN_RATIO_Z = 3.3


def usual_ratios(
    ref_a: npt.NDArray[np.float64], ref_b: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Each leaf's usual ratio a/b from its reference: the pooled ratio of
    all leaves, (sum a + 1/2) / (sum b + 1), unless the leaf's own reference
    departs from it beyond counting noise, and then its own.

    Failures, lost messages and stalls are rare: a small slice's reference
    holds a handful of them or none, and its own ratio would be mostly
    noise (zero, or twice the usual by chance). Expected at such ratios,
    the leaves of a real cause look like they changed by wildly different
    factors, and the localizer, which looks for one uniform change, names
    nothing. The half event keeps a reference without any from making a
    ratio of zero (Jeffreys' prior)."""
    pooled = (float(ref_a.sum()) + 0.5) / (float(ref_b.sum()) + 1.0)
    mu = ref_b * pooled
    own = np.abs(ref_a - mu) > _OWN_RATIO_Z * np.sqrt(mu + 1.0)
    return np.where(own, (ref_a + 0.5) / (ref_b + 1.0), pooled)


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
