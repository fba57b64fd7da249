"""``qosmon localize FILE.csv``: root-cause combinations of an additive measure.

One row per leaf: dimension columns (any names) plus ``real`` (observed) and
``predict`` (expected). Prints a JSON list of combinations ``{dim: value}``,
most likely first (``--details`` adds deviation and purity). Bad input: a
message naming the line and column, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from qosmon.diagnosis.localize import localize
from qosmon.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.csv", help="leaves: dimensions, real, predict")
    parser.add_argument(
        "--min-purity",
        type=float,
        default=0.8,
        help="share of a combination's volume that must be abnormal (default 0.8)",
    )
    parser.add_argument("--details", action="store_true", help="add deviation and purity")


def read_leaves(path: Path) -> tuple[list[str], list[dict[str, str]], list[float], list[float]]:
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    leaves: list[dict[str, str]] = []
    real: list[float] = []
    predict: list[float] = []
    with fh:
        reader = csv.reader(fh)
        line = 1
        try:
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty file, expected a header with real and predict")
            cols = [h.strip() for h in header]
            if "real" not in cols or "predict" not in cols:
                raise InputError(
                    f"{path}: line 1: header must have columns real and predict, got {header}"
                )
            if len(set(cols)) != len(cols):
                raise InputError(f"{path}: line 1: duplicate column names in {header}")
            dims = [c for c in cols if c not in ("real", "predict")]
            if not dims:
                raise InputError(f"{path}: line 1: no dimension columns besides real, predict")
            i_real, i_pred = cols.index("real"), cols.index("predict")
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(cols):
                    raise InputError(
                        f"{path}: line {line}: {len(row)} columns, header has {len(cols)}"
                    )
                nums = []
                for name, i in (("real", i_real), ("predict", i_pred)):
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
                    nums.append(x)
                leaves.append({d: row[cols.index(d)].strip() for d in dims})
                real.append(nums[0])
                predict.append(nums[1])
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: line {line}: not CSV text: {exc}") from None
    return dims, leaves, real, predict


def main(args: argparse.Namespace) -> int:
    if not 0 < args.min_purity <= 1:
        print("qosmon localize: --min-purity must be in (0, 1]", file=sys.stderr)
        return 2
    try:
        dims, leaves, real, predict = read_leaves(Path(args.file))
    except InputError as exc:
        print(f"qosmon localize: {exc}", file=sys.stderr)
        return 2
    found = localize(leaves, real, predict, dims, min_purity=args.min_purity)
    if args.details:
        out: list[object] = [
            {
                "combination": f.combination,
                "deviation": round(f.deviation, 3),
                "purity": round(f.purity, 3),
                "leaves": f.leaves,
            }
            for f in found
        ]
    else:
        out = [f.combination for f in found]
    print(json.dumps(out))
    return 0
