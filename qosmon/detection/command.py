"""``qosmon detect FILE.csv``: score a ``timestamp,value`` series for anomalies.

Rows are processed in file order with no look-ahead (each score uses only the
rows before it), as a live detector would see them. Output on stdout:
``timestamp,value,anomaly_score`` with the score in 0..1. The timestamp is
echoed as written (Unix seconds or ISO 8601); rows must not go back in time.
Bad input: a message naming the line and column, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from qosmon.detection.score import OnlineScorer
from qosmon.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.csv", help="CSV with a timestamp,value header")
    parser.add_argument("--warmup", type=int, default=10, help="rows scored 0 while learning")


def _parse_ts(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()


def score_file(path: Path, out: TextIO, warmup: int = 10) -> int:
    scorer = OnlineScorer(warmup=warmup)
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    writer = csv.writer(out, lineterminator="\n")
    n = 0
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: line 1: not CSV text: {exc}") from None
        if header is None:
            raise InputError(f"{path}: empty file, expected a header timestamp,value")
        cols = [h.strip().lower() for h in header]
        if "timestamp" not in cols or "value" not in cols:
            raise InputError(
                f"{path}: line 1: header must name columns timestamp and value, got {header}"
            )
        i_ts, i_v = cols.index("timestamp"), cols.index("value")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        last_ts = -math.inf
        line = 1
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) <= max(i_ts, i_v):
                    raise InputError(f"{path}: line {line}: expected {len(header)} columns")
                ts_text, v_text = row[i_ts].strip(), row[i_v].strip()
                try:
                    ts = _parse_ts(ts_text)
                except ValueError:
                    raise InputError(
                        f"{path}: line {line}, column timestamp: not a time: {ts_text!r}"
                    ) from None
                try:
                    value = float(v_text)
                except ValueError:
                    raise InputError(
                        f"{path}: line {line}, column value: not a number: {v_text!r}"
                    ) from None
                if not math.isfinite(value):
                    raise InputError(f"{path}: line {line}, column value: not finite: {v_text!r}")
                if ts < last_ts:
                    raise InputError(
                        f"{path}: line {line}, column timestamp: goes back in time "
                        f"({ts_text!r}); rows must be in time order"
                    )
                last_ts = ts
                s = scorer.update(value)
                writer.writerow([ts_text, v_text, f"{s.score:.4f}"])
                n += 1
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: line {line}: not CSV text: {exc}") from None
    return n


def main(args: argparse.Namespace) -> int:
    try:
        score_file(Path(args.file), sys.stdout, warmup=args.warmup)
    except InputError as exc:
        sys.stdout.flush()
        print(f"qosmon detect: {exc}", file=sys.stderr)
        return 2
    return 0
