"""Localization on real-world shaped breakdowns, additive and ratio.

The breakdowns come from the generator below, written apart from the
localizer and after the shape of service data rather than after its model:
20,000 leaves over 5 dimensions sampled from their product; volumes heavy
tailed (Zipf popularity per value times a log-normal leaf factor, so most
leaves are small); forecast errors heavy tailed (Student t) in every leaf, a
few leaves that did not fail moving a lot anyway; one to three root causes at
once, all at depth 1, 2 or 3 (the dimension count of a cause), each holding at
least 0.5 % of the volume.

- additive: ``real`` vs ``predict`` of a count (viewers, joins): the causes
  lose (or gain) a random share of it;
- ratio: failures / sessions with per-leaf failure rates; the causes' failure
  rate rises 2-5 times, and half the time their sessions also drop (viewers
  give up), so a cause can show fewer failures than predicted at a higher
  rate.

Prints F1 (exact combinations) per measure and depth, false findings on clean
breakdowns and seconds per case; with ``--baseline DIR`` (an older checkout)
its ``localize`` runs on the same cases (ratio cases given the failure counts,
what its CLI accepts). The last line is one JSON object.

    python bench/localize_eval.py [--cases 8] [--baseline /tmp/old-tree]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qosmon.diagnosis.localize import localize

DIMS = ["cdn", "isp", "region", "device", "app_version"]
CARDS = [8, 12, 10, 6, 5]  # 28,800 combinations, 20,000 of them present


@dataclass
class Case:
    measure: str  # "additive" or "ratio"
    depth: int
    leaves: list[dict[str, str]]
    real: np.ndarray
    predict: np.ndarray
    real_b: np.ndarray | None
    predict_b: np.ndarray | None
    causes: list[dict[str, str]]


def _zipf(rng: np.random.Generator, k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** rng.uniform(0.6, 1.4)
    rng.shuffle(w)
    return w / w.sum()


def make_case(rng: np.random.Generator, measure: str, depth: int, n_causes: int,
              n_leaves: int = 20_000) -> Case:
    total = int(np.prod(CARDS))
    pick = rng.choice(total, size=n_leaves, replace=False)
    codes = np.array(np.unravel_index(pick, CARDS)).T  # leaves x dims
    vol = np.full(n_leaves, 2e6)
    for j, k in enumerate(CARDS):
        vol *= _zipf(rng, k)[codes[:, j]] * k
    vol *= rng.lognormal(0.0, 1.0, n_leaves)
    vol = vol / vol.sum() * rng.uniform(5e5, 5e6)  # sessions in the interval
    # Root causes: distinct combinations at this depth, not nested in each
    # other, with enough volume to be seen at all.
    causes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    in_cause = np.zeros(n_leaves, dtype=int) - 1
    tries = 0
    while len(causes) < n_causes and tries < 500:
        tries += 1
        dims = tuple(sorted(rng.choice(len(CARDS), size=depth, replace=False).tolist()))
        row = codes[rng.integers(n_leaves)]
        vals = tuple(int(row[j]) for j in dims)
        m = np.all(codes[:, list(dims)] == np.array(vals), axis=1)
        if vol[m].sum() < 0.005 * vol.sum() or vol[m].sum() > 0.5 * vol.sum():
            continue
        if np.any(in_cause[m] >= 0):
            continue
        in_cause[m] = len(causes)
        causes.append((dims, vals))
    leaves = [{DIMS[j]: f"{DIMS[j]}{codes[i, j]}" for j in range(len(DIMS))}
              for i in range(n_leaves)]
    truth = [{DIMS[j]: f"{DIMS[j]}{v}" for j, v in zip(d, vs, strict=True)} for d, vs in causes]
    # Forecast error per leaf: heavy tailed, larger for small leaves.
    err = rng.standard_t(3, n_leaves) * (0.03 + 0.3 / np.sqrt(vol + 1))
    wild = rng.random(n_leaves) < 0.01  # leaves that did not fail but moved a lot
    err[wild] += rng.normal(0, 0.4, wild.sum())
    if measure == "additive":
        predict = vol
        mean = np.maximum(vol * (1 + err), 0)
        down = rng.random() < 0.7
        for c in range(len(causes)):
            f = rng.uniform(0.2, 0.7) if down else rng.uniform(1.6, 3.0)
            mean[in_cause == c] *= f
        real = rng.poisson(mean).astype(float)
        return Case(measure, depth, leaves, real, predict, None, None, truth)
    rate = 0.02 * rng.lognormal(0, 0.5, n_leaves)
    for j, k in enumerate(CARDS):
        rate *= rng.lognormal(0, 0.3, k)[codes[:, j]]
    rate = np.clip(rate, 1e-4, 0.5)
    predict_b = vol
    real_b_mean = np.maximum(vol * (1 + err), 0)
    real_rate = rate * rng.lognormal(0, 0.05, n_leaves)
    for c in range(len(causes)):
        m = in_cause == c
        real_rate[m] *= rng.uniform(2.0, 5.0)
        if rng.random() < 0.5:
            real_b_mean[m] *= rng.uniform(0.3, 0.7)  # viewers give up
    real_b = rng.poisson(real_b_mean).astype(float)
    real_a = rng.binomial(real_b.astype(np.int64), np.clip(real_rate, 0, 1)).astype(float)
    predict_a = predict_b * rate
    return Case(measure, depth, leaves, real_a, predict_a, real_b, predict_b, truth)


def _load_baseline(root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "baseline_localize", root / "qosmon" / "diagnosis" / "localize.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


Localizer = Callable[[Case], list[dict[str, str]]]


def current(case: Case) -> list[dict[str, str]]:
    found = localize(case.leaves, case.real, case.predict, DIMS,
                     real_b=case.real_b, predict_b=case.predict_b)
    return [f.combination for f in found]


def score(found: list[dict[str, str]], truth: list[dict[str, str]]) -> tuple[int, int, int]:
    f = {tuple(sorted(c.items())) for c in found}
    t = {tuple(sorted(c.items())) for c in truth}
    return len(f & t), len(f - t), len(t - f)


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=8, help="cases per measure and depth")
    ap.add_argument("--clean", type=int, default=4, help="clean cases per measure")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--baseline", type=Path, help="an older tree to compare with")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = [
        make_case(rng, m, d, int(rng.integers(1, 4)))
        for m in ("additive", "ratio") for d in (1, 2, 3) for _ in range(args.cases)
    ]
    clean = [make_case(rng, m, 1, 0) for m in ("additive", "ratio") for _ in range(args.clean)]
    runs: dict[str, Localizer] = {"current": current}
    if args.baseline:
        old = _load_baseline(args.baseline)

        def baseline(case: Case) -> list[dict[str, str]]:
            return [f.combination for f in old.localize(case.leaves, list(case.real),
                                                         list(case.predict), DIMS)]

        runs["baseline"] = baseline
    figures: dict[str, object] = {"leaves": 20_000, "dims": len(DIMS), "cases": len(cases)}
    for name, fn in runs.items():
        counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
        elapsed: list[float] = []
        for c in cases:
            t0 = time.perf_counter()
            found = fn(c)
            elapsed.append(time.perf_counter() - t0)
            for k, x in enumerate(score(found, c.causes)):
                counts[(c.measure, c.depth)][k] += x
        false = 0
        for c in clean:
            t0 = time.perf_counter()
            false += len(fn(c))
            elapsed.append(time.perf_counter() - t0)
        print(f"{name}:")
        print(f"  {'measure':<10}{'depth':>6}{'F1':>7}{'TP':>5}{'FP':>5}{'FN':>5}")
        for (m, d), (tp, fp, fn_) in sorted(counts.items()):
            print(f"  {m:<10}{d:>6}{f1(tp, fp, fn_):>7.3f}{tp:>5}{fp:>5}{fn_:>5}")
            figures[f"{name}_f1_{m}_d{d}"] = round(f1(tp, fp, fn_), 3)
        for m in ("additive", "ratio"):
            tot = [sum(v[k] for (mm, _), v in counts.items() if mm == m) for k in range(3)]
            figures[f"{name}_f1_{m}"] = round(f1(*tot), 3)
        mean_s = float(np.mean(elapsed))
        p95_s = float(np.percentile(elapsed, 95))
        print(f"  F1 additive {figures[f'{name}_f1_additive']}, ratio "
              f"{figures[f'{name}_f1_ratio']}; false findings on {len(clean)} clean cases: "
              f"{false}; {mean_s:.3f} s/case (p95 {p95_s:.3f})")
        figures[f"{name}_false_findings_clean"] = false
        figures[f"{name}_s_per_case"] = round(mean_s, 4)
        figures[f"{name}_s_per_case_p95"] = round(p95_s, 4)
    if "baseline" in runs:
        for m in ("additive", "ratio"):
            figures[f"f1_{m}_gain"] = round(
                float(figures[f"current_f1_{m}"]) - float(figures[f"baseline_f1_{m}"]), 3)  # type: ignore[arg-type]
        figures["speed_ratio"] = round(
            float(figures["baseline_s_per_case"]) / float(figures["current_s_per_case"]), 1)  # type: ignore[arg-type]
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
