"""``qosmon localize FILE.csv``: root-cause combinations of a breakdown, with
the engine's localizer (``diagnosis/localize.py``).

One row per leaf: dimension columns (any names) plus either ``real`` and
``predict`` (an additive measure: viewers, joins, orders) or ``real_a``,
``predict_a``, ``real_b``, ``predict_b`` (a ratio ``a/b``: failures/attempts,
orders/viewers, stalled/watched seconds). Prints a JSON list of combinations
``{dim: value}``, most of the anomaly explained first, ``[]`` when nothing
stands out (``--details`` adds the share explained, the change, how
uniformly the combination moved, its significance and the measure observed
vs expected). Bad input: a message naming the line and
column, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from qosmon.diagnosis.localize import LocalizeParams, localize
from qosmon.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE.csv",
        help="leaves: dimensions, then real,predict or real_a,predict_a,real_b,predict_b",
    )
    parser.add_argument(
        "--min-consistency",
        type=float,
        default=LocalizeParams.min_consistency,
        help="how uniformly a combination must have moved, 0..1 "
        f"(default {LocalizeParams.min_consistency})",
    )
    parser.add_argument(
        "--max-depth",
        type=int,
        default=LocalizeParams.max_depth,
        help=f"most dimensions in one combination (default {LocalizeParams.max_depth})",
    )
    parser.add_argument(
        "--details",
        action="store_true",
        help="add share explained, change, consistency, z, observed, expected",
    )


ADDITIVE = ("real", "predict")
RATIO = ("real_a", "predict_a", "real_b", "predict_b")


def read_leaves(path: Path) -> tuple[list[str], list[dict[str, str]], dict[str, list[float]]]:
    """Dimensions, leaves and the measure columns (additive or ratio)."""
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    leaves: list[dict[str, str]] = []
    with fh:
        reader = csv.reader(fh)
        line = 1
        try:
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty file, expected a header with real and predict")
            cols = [h.strip().lstrip("\ufeff") for h in header]
            measure: tuple[str, ...]
            if all(c in cols for c in RATIO):
                measure = RATIO
            elif all(c in cols for c in ADDITIVE):
                measure = ADDITIVE
            else:
                raise InputError(
                    f"{path}: line 1: header must have columns real and predict, or real_a, "
                    f"predict_a, real_b and predict_b, got {header}"
                )
            if len(set(cols)) != len(cols):
                raise InputError(f"{path}: line 1: duplicate column names in {header}")
            dims = [c for c in cols if c not in ADDITIVE + RATIO]
            if not dims:
                raise InputError(
                    f"{path}: line 1: no dimension columns besides {', '.join(measure)}"
                )
            where = {name: cols.index(name) for name in measure}
            dim_at = [(d, cols.index(d)) for d in dims]
            values: dict[str, list[float]] = {name: [] for name in measure}
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(cols):
                    raise InputError(
                        f"{path}: line {line}: {len(row)} columns, header has {len(cols)}"
                    )
                for name, i in where.items():
                    try:
                        x = float(row[i])
                    except ValueError:
                        raise InputError(
                            f"{path}: line {line}, column {name}: not a number: {row[i]!r}"
                        ) from None
                    if not math.isfinite(x) or x < 0:
                        raise InputError(
                            f"{path}: line {line}, column {name}: must be a finite number "
                            f">= 0, got {row[i]!r}"
                        )
                    values[name].append(x)
                leaves.append({d: row[i].strip() for d, i in dim_at})
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: line {line}: not CSV text: {exc}") from None
    return dims, leaves, values


def main(args: argparse.Namespace) -> int:
    if not 0 < args.min_consistency <= 1:
        print("qosmon localize: --min-consistency must be in (0, 1]", file=sys.stderr)
        return 2
    if args.max_depth is not None and args.max_depth < 1:
        print("qosmon localize: --max-depth must be at least 1", file=sys.stderr)
        return 2
    try:
        dims, leaves, v = read_leaves(Path(args.file))
    except InputError as exc:
        print(f"qosmon localize: {exc}", file=sys.stderr)
        return 2
    params = LocalizeParams(min_consistency=args.min_consistency, max_depth=args.max_depth)
    if "real_a" in v:
        found = localize(
            leaves, v["real_a"], v["predict_a"], dims,
            real_b=v["real_b"], predict_b=v["predict_b"], params=params,
        )
    else:
        found = localize(leaves, v["real"], v["predict"], dims, params=params)
    if args.details:
        out: list[object] = [
            {
                "combination": f.combination,
                "explains": round(f.explains, 3),
                "change": round(f.change, 3),
                "consistency": round(f.consistency, 3),
                "z": round(f.z, 1),
                "observed": round(f.observed, 6),
                "expected": round(f.expected, 6),
                "leaves": f.leaves,
            }
            for f in found
        ]
    else:
        out = [f.combination for f in found]
    print(json.dumps(out))
    return 0
