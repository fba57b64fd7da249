"""``qosmon detect FILE.csv``: the engine's business-series detectors over a
``timestamp,value`` series.

The detectors' tick is one row (``--clock rows``, the default, whatever the
sampling interval) or the timestamp in seconds (``--clock time``, as the
engine runs them on per-second data).

``--kind level|count|rate`` picks the detector (see ``detection/series.py``);
without it, a series whose first rows are all whole numbers >= 0 is a
``count``, anything else a ``level``. Rows are scored one by one in the order
they arrive, with no look-ahead (each score uses only the rows before it), so
a clock that steps back, repeated timestamps and gaps do not stop anything:
they are counted and noted on stderr. Rows with an empty or non-numeric value
are skipped, counted on stderr, and left out of the output.

Output on stdout: ``timestamp,value,anomaly_score,expected,anomalous``, the
timestamp echoed as written. The score is 1 on the row a change is confirmed,
0.5 while it lasts, 0 otherwise. A file that cannot be read, has no
``timestamp,value`` header or no number at all: a message, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TextIO

from qosmon.configfile import load_model
from qosmon.detection.series import Direction, Kind, SeriesDetector, pick_kind
from qosmon.diagnosis.config import BusinessThresholds, DiagnosisConfig
from qosmon.errors import ConfigError, InputError

# Rows looked at to pick the kind of a series when --kind is not given. They
# fall within every detector's learning time, so the choice uses no row that
# a score could not already have seen.
PICK_ROWS = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.csv", help="CSV with a timestamp,value header")
    parser.add_argument(
        "--kind",
        choices=[k.value for k in Kind],
        help="level (viewers, a ratio), count (orders, messages per row) or rate "
        "(leaves per row); default: picked from the first rows",
    )
    parser.add_argument(
        "--direction",
        choices=[d.value for d in Direction],
        help="which changes count; default as the engine watches the kind "
        "(level and count: down, rate: up)",
    )
    parser.add_argument(
        "--clock",
        choices=["rows", "time"],
        default="rows",
        help="the detectors' tick: one per row in arrival order (default, any sampling "
        "interval), or the timestamp in seconds as the engine runs on per-second data "
        "(a row that goes back in time is scored at the latest time seen)",
    )
    parser.add_argument(
        "--config", metavar="FILE.toml", help="diagnosis thresholds (the engine's config file)"
    )


def _parse_ts(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class _Rows:
    """The usable rows of a series file, with what was skipped or odd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped: Counter[str] = Counter()
        self.first_skip: int | None = None
        self.notes: Counter[str] = Counter()

    def _skip(self, why: str, line: int) -> None:
        self.skipped[why] += 1
        if self.first_skip is None:
            self.first_skip = line

    def read(self, fh: TextIO) -> Iterator[tuple[str, float | None, float]]:
        path = self.path
        reader = csv.reader(fh)
        line = 1
        try:
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty file, expected a header timestamp,value")
            cols = [h.strip().lower().lstrip("\ufeff") for h in header]
            if "timestamp" not in cols or "value" not in cols:
                raise InputError(
                    f"{path}: line 1: header must name columns timestamp and value, got {header}"
                )
            i_ts, i_v = cols.index("timestamp"), cols.index("value")
            last_ts: float | None = None
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) <= max(i_ts, i_v):
                    self._skip("missing columns", line)
                    continue
                ts_text, v_text = row[i_ts].strip(), row[i_v].strip()
                if not v_text:
                    self._skip("empty value", line)
                    continue
                try:
                    value = float(v_text)
                except ValueError:
                    self._skip("not a number", line)
                    continue
                if not math.isfinite(value):
                    self._skip("not finite", line)
                    continue
                ts = _parse_ts(ts_text)
                if ts is None:
                    self.notes["have no readable timestamp"] += 1
                elif last_ts is not None and ts < last_ts:
                    self.notes["go back in time"] += 1
                elif last_ts is not None and ts == last_ts:
                    self.notes["repeat a timestamp"] += 1
                if ts is not None:
                    last_ts = ts
                yield ts_text, ts, value
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: line {line}: not CSV text: {exc}") from None

    def report(self, err: TextIO) -> None:
        if self.skipped:
            parts = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
            total = sum(self.skipped.values())
            err.write(
                f"qosmon detect: skipped {total} row{'s' if total != 1 else ''} "
                f"({parts}; first at line {self.first_skip})\n"
            )
        if self.notes:
            parts = ", ".join(f"{n} {why}" for why, n in sorted(self.notes.items()))
            err.write(f"qosmon detect: note: rows that {parts}; scored in arrival order\n")


def score_file(
    path: Path,
    out: TextIO,
    err: TextIO,
    *,
    kind: Kind | None = None,
    direction: Direction | None = None,
    thresholds: BusinessThresholds | None = None,
    clock: str = "rows",
) -> int:
    """Score every usable row of ``path``; returns how many were scored."""
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    rows = _Rows(path)
    writer = csv.writer(out, lineterminator="\n")
    n = 0
    with fh:
        it = rows.read(fh)
        head: list[tuple[str, float | None, float]] = []
        if kind is None:
            for r in it:
                head.append(r)
                if len(head) >= PICK_ROWS:
                    break
            kind = pick_kind([v for _, _, v in head])
        det = SeriesDetector(kind, direction, thresholds)
        writer.writerow(["timestamp", "value", "anomaly_score", "expected", "anomalous"])

        def chained() -> Iterator[tuple[str, float | None, float]]:
            yield from head
            yield from it

        tick = -math.inf
        for ts_text, ts, value in chained():
            if clock == "time":
                # Never backwards: a late row is scored as arriving now.
                tick = max(tick, ts if ts is not None else tick)
                if not math.isfinite(tick):
                    tick = 0.0
            else:
                tick = float(n)  # the row's place in arrival order
            p = det.update(tick, value)
            expected = "" if p.expected is None else f"{p.expected:.6g}"
            writer.writerow(
                [ts_text, f"{value:.10g}", f"{p.score:.2f}", expected, int(p.anomalous)]
            )
            n += 1
    rows.report(err)
    if n == 0:
        raise InputError(f"{path}: no row with a number in column value")
    return n


def main(args: argparse.Namespace) -> int:
    try:
        thresholds = None
        if args.config:
            thresholds = load_model(Path(args.config), DiagnosisConfig).business
        score_file(
            Path(args.file),
            sys.stdout,
            sys.stderr,
            kind=Kind(args.kind) if args.kind else None,
            direction=Direction(args.direction) if args.direction else None,
            thresholds=thresholds,
            clock=args.clock,
        )
    except (InputError, ConfigError) as exc:
        sys.stdout.flush()
        print(f"qosmon detect: {exc}", file=sys.stderr)
        return 2
    return 0
