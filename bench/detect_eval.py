"""Change-onset detection by ``qosmon detect`` on labelled, real-world shaped
series, run as a user runs it (CSV file in, CLI, CSV out).

The series come from the generator below, written apart from the detectors:
one hour at one row per second each; levels (audiences, ratios) with daily
style swings, slow drifts, multiplicative noise and one-row spikes, and
counts (orders, messages) from a Poisson process with a swinging rate. The
labelled changes are level shifts of 20-70 % (or rate changes x0-0.4 and
x3-5) that last 1-10 minutes or stay; the start and, when it comes, the end of
each shift are change onsets. Spikes, swings and drifts are not changes.
Exports are messy on purpose: a third of the files have a clock that steps
back five minutes once, a third repeat every timestamp and carry empty and
non-numeric values.

An alarm is a row whose score reaches the threshold after one that did not;
an onset is found when an alarm falls within ``--tolerance`` rows after it.
Prints precision and recall of onsets, false alarms per clean hour and files
refused; with ``--baseline DIR`` an older checkout's CLI runs on the same
files (at score thresholds 0.5 and 0.9). The last line is one JSON object.

    python bench/detect_eval.py [--series 30] [--clean 10] [--baseline /tmp/old]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TICKS = 3600


@dataclass
class Series:
    name: str
    values: np.ndarray  # one per tick
    onsets: list[int]  # ticks where a change starts (or ends)
    is_count: bool


def make_series(rng: np.random.Generator, name: str, changes: bool) -> Series:
    t = np.arange(TICKS, dtype=float)
    is_count = rng.random() < 0.4
    swing = 1 + rng.uniform(0, 0.2) * np.sin(2 * np.pi * t / rng.uniform(900, 5400)
                                             + rng.uniform(0, 6.3))
    drift = 1 + np.cumsum(rng.normal(0, rng.uniform(0, 0.0005), TICKS))
    shape = swing * np.clip(drift, 0.5, 1.5)
    factor = np.ones(TICKS)
    onsets: list[int] = []
    if changes:
        at = int(rng.integers(600, 1500))
        while at < TICKS - 300 and len(onsets) < 4:
            if is_count:
                f = rng.uniform(0.0, 0.4) if rng.random() < 0.6 else rng.uniform(3.0, 5.0)
            else:
                f = rng.uniform(0.3, 0.8) if rng.random() < 0.6 else rng.uniform(1.2, 1.7)
            lasts = int(rng.integers(60, 600)) if rng.random() < 0.8 else TICKS
            end = min(TICKS, at + lasts)
            factor[at:end] = f
            onsets.append(at)
            if end < TICKS:
                onsets.append(end)
            at = end + int(rng.integers(400, 900))
    if is_count:
        rate = rng.uniform(0.5, 20) * shape * factor
        values = rng.poisson(rate).astype(float)
    else:
        level = rng.lognormal(np.log(2000), 1.5)
        noise = rng.normal(0, rng.uniform(0.005, 0.03), TICKS)
        values = level * shape * factor * (1 + noise)
        spikes = rng.random(TICKS) < 0.002
        values[spikes] *= rng.choice([0.5, 1.6], spikes.sum())
    return Series(name, values, onsets, is_count)


def write_csv(s: Series, path: Path, rng: np.random.Generator, mess: str) -> None:
    """Rows as an export would carry them; the scored rows stay in tick order."""
    lines = ["timestamp,value"]
    t0 = 1_700_000_000
    step_at = int(rng.integers(500, TICKS - 500))
    for i, v in enumerate(s.values):
        ts = t0 + i
        if mess == "clock" and i >= step_at:
            ts -= 300  # the clock stepped back five minutes
        if mess == "dupes":
            ts = t0 + i // 2
            if rng.random() < 0.01:
                lines.append(f"{ts},")
            if rng.random() < 0.005:
                lines.append(f"{ts},NaN?")
        text = f"{int(v)}" if s.is_count else f"{v:.3f}"
        lines.append(f"{ts},{text}")
    path.write_text("\n".join(lines) + "\n")


def run_cli(root: Path, path: Path, extra: list[str]) -> list[float] | None:
    env = dict(os.environ, PYTHONPATH=str(root))
    res = subprocess.run(
        [sys.executable, "-m", "qosmon.cli", "detect", *extra, str(path)],
        capture_output=True, text=True, cwd=root, env=env, timeout=300,
    )
    if res.returncode != 0:
        return None
    rows = list(csv.reader(io.StringIO(res.stdout)))[1:]
    return [float(r[2]) for r in rows]


def alarms(scores: list[float], threshold: float) -> list[int]:
    out, prev = [], 0.0
    for i, s in enumerate(scores):
        if s >= threshold and prev < threshold:
            out.append(i)
        prev = s
    return out


def match(found: list[int], onsets: list[int], tol: int) -> tuple[int, int]:
    """(onsets found, alarms that found nothing)."""
    hit = 0
    used: set[int] = set()
    for c in onsets:
        for a in found:
            if a not in used and c <= a <= c + tol:
                used.add(a)
                hit += 1
                break
    return hit, len([a for a in found if a not in used])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=30, help="series with changes")
    ap.add_argument("--clean", type=int, default=10, help="series with none")
    ap.add_argument("--tolerance", type=int, default=30, help="rows after an onset")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--baseline", type=Path, help="an older tree to compare with")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    series = [make_series(rng, f"s{i}", True) for i in range(args.series)]
    series += [make_series(rng, f"c{i}", False) for i in range(args.clean)]
    runs: list[tuple[str, Path, list[str], float]] = [
        ("current", ROOT, ["--direction", "both"], 0.9)
    ]
    if args.baseline:
        runs += [("baseline_t0.5", args.baseline, [], 0.5),
                 ("baseline_t0.9", args.baseline, [], 0.9)]
    figures: dict[str, object] = {"series": args.series, "clean": args.clean,
                                  "rows_per_series": TICKS}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for k, s in enumerate(series):
            mess = ("clean", "clock", "dupes")[k % 3]
            p = Path(tmp) / f"{s.name}.csv"
            write_csv(s, p, rng, mess)
            files.append((s, p))
        cache: dict[tuple[Path, str], list[float] | None] = {}
        for name, root, extra, threshold in runs:
            found_onsets = n_onsets = n_alarms = false = clean_false = refused = 0
            accepted_onsets = 0
            for s, p in files:
                key = (root, str(p))
                if key not in cache:
                    cache[key] = run_cli(root, p, extra)
                scores = cache[key]
                if scores is None:
                    refused += 1
                    n_onsets += len(s.onsets)
                    continue
                a = alarms(scores, threshold)
                hit, miss = match(a, s.onsets, args.tolerance)
                found_onsets += hit
                n_onsets += len(s.onsets)
                accepted_onsets += len(s.onsets)
                n_alarms += len(a)
                false += miss
                if not s.onsets:
                    clean_false += len(a)
            precision = (n_alarms - false) / n_alarms if n_alarms else 1.0
            recall = found_onsets / n_onsets if n_onsets else 1.0
            # What it does on the files it did not refuse.
            recall_read = found_onsets / accepted_onsets if accepted_onsets else 1.0
            clean_hours = args.clean * TICKS / 3600
            per_hour = clean_false / clean_hours if clean_hours else 0.0
            print(f"{name}: precision {precision:.3f}, recall {recall:.3f} of {n_onsets} "
                  f"onsets, {per_hour:.2f} false alarms per clean hour, "
                  f"{refused}/{len(files)} files refused (recall on the others "
                  f"{recall_read:.3f})")
            figures[f"{name}_precision"] = round(precision, 3)
            figures[f"{name}_recall"] = round(recall, 3)
            figures[f"{name}_false_alarms_per_clean_hour"] = round(per_hour, 2)
            figures[f"{name}_files_refused"] = refused
            figures[f"{name}_recall_on_files_read"] = round(recall_read, 3)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
