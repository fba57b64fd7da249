"""Business data from a CSV export, for after-the-fact analysis.

The header row names ``BusinessSample`` fields (any order, any subset that
includes ``ts``); an empty cell is unknown. ``show_id`` may come from the
caller instead of a column. ``ts`` is Unix seconds or an ISO 8601 time with
a UTC offset. Errors name the line (1 = header) and the column.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime

from pydantic import ValidationError

from qosmon.collector.wire import INT64_MAX, ApiError
from qosmon.model import BusinessSample

FIELDS = tuple(BusinessSample.model_fields)
MAX_ROWS = 1_000_000


def _ts(cell: str, line: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        try:
            dt = datetime.fromisoformat(cell)
        except ValueError:
            raise _cell_error(line, "ts", "not Unix seconds nor an ISO 8601 time") from None
        if dt.tzinfo is None:
            raise _cell_error(line, "ts", "ISO time without a UTC offset is ambiguous") from None
        return dt.timestamp()
    if not math.isfinite(value):
        raise _cell_error(line, "ts", "must be a finite number")
    return value


def _cell_error(line: int, column: str, problem: str) -> ApiError:
    return ApiError(400, f"line {line}, column {column}: {problem}", column, line=line,
                    column=column)


def parse_business_csv(data: bytes, show_id: str | None) -> list[BusinessSample]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"CSV is not UTF-8 (byte {exc.start})", "(body)") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ApiError(400, "empty CSV: a header row is needed", "(body)") from None
    except csv.Error as exc:
        raise ApiError(400, f"line 1: {exc}", "(body)", line=1) from None
    header = [h.strip() for h in header]
    for col in header:
        if col not in FIELDS:
            raise _cell_error(1, col or "(empty)", f"unknown column (known: {', '.join(FIELDS)})")
    if len(set(header)) != len(header):
        raise ApiError(400, "line 1: a column is named twice", "(header)", line=1)
    if "ts" not in header:
        raise _cell_error(1, "ts", "the ts column is required")
    if "show_id" not in header and not show_id:
        raise _cell_error(1, "show_id", "no show_id column and no ?show_id= given")
    out: list[BusinessSample] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ApiError(
                    400, f"line {line}: {len(row)} cells, header has {len(header)}", "(row)",
                    line=line,
                )
            if len(out) >= MAX_ROWS:
                raise ApiError(400, f"more than {MAX_ROWS} rows", "(body)", line=line)
            values: dict[str, object] = {}
            for col, cell in zip(header, row, strict=True):
                cell = cell.strip()
                if cell == "":
                    continue
                values[col] = _ts(cell, line) if col == "ts" else cell
            if show_id and values.setdefault("show_id", show_id) != show_id:
                raise _cell_error(line, "show_id", f"differs from ?show_id={show_id}")
            try:
                sample = BusinessSample.model_validate(values)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                col = str(err["loc"][0]) if err["loc"] else "(row)"
                raise _cell_error(line, col, err["msg"]) from None
            for col in ("viewers_online", "joins", "leaves", "orders", "chat_messages"):
                v = getattr(sample, col)
                if v is not None and v > INT64_MAX:
                    raise _cell_error(line, col, "integer out of range (64-bit)")
            out.append(sample)
    except csv.Error as exc:
        raise ApiError(400, f"line {reader.line_num}: {exc}", "(body)",
                       line=reader.line_num) from None
    return out
