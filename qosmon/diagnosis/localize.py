"""Root-cause combinations over any multi-dimensional breakdown.

Input: leaves, each a combination of dimension values (region x ISP x edge
node x device ...) with an observed (``real``) and expected (``predict``)
value of an additive measure (viewers, joins, orders). Output: the
combinations ``{dim: value}`` that explain the anomaly, most likely first.

How it decides:

1. Each leaf gets a deviation score ``2 (real - predict) / (real + predict)``
   (bounded, defined at zero). The anomaly's direction is the sign of the total
   deviation. Noise is estimated from the leaves that moved the *other* way
   (anomalies rarely do), as a robust sigma; a leaf is abnormal when it moved
   in the anomaly's direction by more than ``max(min_deviation, k x sigma)``.
2. Candidate combinations are searched layer by layer (one dimension, then
   two, ...). A combination qualifies when the abnormal leaves under it carry
   at least ``min_purity`` of its expected volume: the whole combination moved,
   not a few of its leaves.
3. Greedy cover: within a layer, the qualifying combination explaining the
   most not-yet-explained deviation is taken first; deeper layers are searched
   only for what the shallower ones left unexplained. So the answer is the
   most general (narrowest-sufficient) set, not every leaf.
4. Combinations explaining less than ``min_share`` of the total abnormal
   deviation are dropped as noise; the rest are ranked by deviation explained.

The engine uses the same idea for probes (``scope.py``), restricted to
region-rooted scopes and requiring every probe of a group to be bad.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    combination: dict[str, str]
    deviation: float  # sum of real - predict over the abnormal leaves explained
    purity: float  # share of the combination's expected volume that is abnormal
    leaves: int  # abnormal leaves explained


def deviation_scores(real: Sequence[float], predict: Sequence[float]) -> list[float]:
    out = []
    for r, p in zip(real, predict, strict=True):
        denom = r + p
        out.append(0.0 if denom == 0 else 2 * (r - p) / denom)
    return out


def abnormal_leaves(
    real: Sequence[float],
    predict: Sequence[float],
    *,
    min_deviation: float = 0.05,
    k_sigma: float = 4.0,
) -> list[bool]:
    ds = deviation_scores(real, predict)
    total = sum(r - p for r, p in zip(real, predict, strict=True))
    sign = -1.0 if total < 0 else 1.0
    other = [abs(d) for d in ds if d * sign < 0]
    # Half-normal: the median of |x| is 0.6745 sigma.
    sigma = statistics.median(other) / 0.6745 if len(other) >= 5 else 0.0
    cutoff = max(min_deviation, k_sigma * sigma)
    return [d * sign > cutoff for d in ds]


def explain(
    leaves: Sequence[Mapping[str, str]],
    abnormal: Sequence[bool],
    dims: Sequence[str],
    *,
    weights: Sequence[float] | None = None,
    deviations: Sequence[float] | None = None,
    min_purity: float = 0.8,
    min_share: float = 0.02,
    max_layer: int | None = None,
) -> list[Finding]:
    """The combinations that explain the abnormal leaves, best first."""
    n = len(leaves)
    w = list(weights) if weights is not None else [1.0] * n
    dev = list(deviations) if deviations is not None else [1.0] * n
    bad = [i for i in range(n) if abnormal[i]]
    if not bad:
        return []
    total_dev = sum(abs(dev[i]) for i in bad) or 1.0
    total_w = sum(w) or 1.0
    bad_w = sum(w[i] for i in bad)
    if bad_w / total_w >= min_purity:
        return [Finding({}, sum(dev[i] for i in bad), bad_w / total_w, len(bad))]
    values = [tuple(leaf.get(d, "") for d in dims) for leaf in leaves]
    covered = [False] * n
    found: list[Finding] = []
    depth = max_layer or len(dims)
    for layer in range(1, depth + 1):
        candidates: list[tuple[dict[str, str], list[int], float]] = []
        for combo in itertools.combinations(range(len(dims)), layer):
            weight: dict[tuple[str, ...], float] = {}
            members: dict[tuple[str, ...], list[int]] = {}
            for i in range(n):
                key = tuple(values[i][j] for j in combo)
                weight[key] = weight.get(key, 0.0) + w[i]
                if abnormal[i]:
                    members.setdefault(key, []).append(i)
            for key, idx in members.items():
                tw = weight[key]
                purity = sum(w[i] for i in idx) / tw if tw > 0 else 1.0
                if purity >= min_purity:
                    candidates.append(({dims[j]: key[t] for t, j in enumerate(combo)}, idx, purity))
        # Greedy: most unexplained deviation first; ties go to earlier dims.
        candidates.sort(key=lambda c: -sum(abs(dev[i]) for i in c[1] if not covered[i]))
        for comb, idx, purity in candidates:
            new = [i for i in idx if not covered[i]]
            if not new:
                continue
            share = sum(abs(dev[i]) for i in new) / total_dev
            if share < min_share:
                continue
            for i in new:
                covered[i] = True
            found.append(Finding(comb, sum(dev[i] for i in idx), purity, len(idx)))
        if all(covered[i] for i in bad):
            break
    found.sort(key=lambda f: -abs(f.deviation))
    return found


def localize(
    leaves: Sequence[Mapping[str, str]],
    real: Sequence[float],
    predict: Sequence[float],
    dims: Sequence[str],
    *,
    min_purity: float = 0.8,
    min_share: float = 0.02,
) -> list[Finding]:
    """Root-cause combinations of an additive measure, most likely first."""
    abnormal = abnormal_leaves(real, predict)
    # Weight by expected volume so tiny leaves (1 viewer) do not decide
    # whether a whole combination moved.
    weights = [max(p, 0.0) + 1e-9 for p in predict]
    deviations = [r - p for r, p in zip(real, predict, strict=True)]
    return explain(
        leaves,
        abnormal,
        dims,
        weights=weights,
        deviations=deviations,
        min_purity=min_purity,
        min_share=min_share,
    )
