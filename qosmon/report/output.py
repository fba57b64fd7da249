"""Report files: one HTML file per show and an index of the folder
(``index.html`` for people, ``index.json`` for the index itself).

Every file is written whole or not at all (temporary file, then rename), so
a web server or browser never sees half a report; the index is updated
under a lock, so two reports written at once both end up in it. Files are
readable by everyone (0644): a report folder is meant to be served.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qosmon.i18n import DEFAULT_LANGUAGE
from qosmon.report.data import ShowData
from qosmon.report.render import build_report, render_index
from qosmon.report.verdict import ReportThresholds

FILE_MODE = 0o644
INDEX_JSON = "index.json"
INDEX_HTML = "index.html"
_LOCK = ".index.lock"


def report_filename(show_id: str) -> str:
    """A file name that is safe on any file system and cannot leave the
    folder; ids that had to be changed get a short hash to stay distinct."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", show_id).lstrip(".")[:100] or "show"
    if safe != show_id:
        safe += "-" + hashlib.sha256(show_id.encode()).hexdigest()[:8]
    if safe == "index":
        safe = "index-show"
    return f"{safe}.html"


def atomic_write(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``text`` in one step, with permissions ``mode``
    (a temporary file is created private; the report is not)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            os.fchmod(fh.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _index_lock(out_dir: Path) -> Iterator[None]:
    fd = os.open(out_dir / _LOCK, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


HISTORY_HTML = "history.html"  # written next to the reports by qosmon history


def write_report(
    data: ShowData, out_dir: Path, thresholds: ReportThresholds | None = None,
    now: float | None = None, lang: str = DEFAULT_LANGUAGE,
    zones: dict[str, str] | None = None,
) -> Path:
    """Write ``<out_dir>/<show_id>.html`` in ``lang`` and refresh the
    folder's index (in that language too)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html, entry = build_report(data, thresholds, now,
                               history_href=HISTORY_HTML if (out_dir / HISTORY_HTML).is_file()
                               else None, lang=lang, zones=zones)
    name = report_filename(data.show.show_id)
    path = out_dir / name
    atomic_write(path, html)
    entry["file"] = name
    with _index_lock(out_dir):
        entries = read_index(out_dir)
        entries[name] = entry
        _write_index(out_dir, entries, lang)
    return path


def read_index(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The folder's index by file name: entries whose report file is there
    and named for their show. An unreadable index is empty (and rebuilt as
    reports are written)."""
    try:
        raw = json.loads((out_dir / INDEX_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict) or not isinstance(raw.get("reports"), list):
        return {}
    out = {}
    for e in raw["reports"]:
        if isinstance(e, dict) and isinstance(e.get("file"), str) and (
            out_dir / e["file"]
        ).is_file() and e["file"] == report_filename(str(e.get("show_id", ""))):
            out[e["file"]] = e
    return out


def _write_index(out_dir: Path, entries: dict[str, dict[str, Any]], lang: str) -> None:
    rows = sorted(entries.values(), key=lambda e: -float(e.get("start_ts") or 0))
    atomic_write(out_dir / INDEX_JSON,
                 json.dumps({"version": 1, "reports": rows}, indent=1, sort_keys=True))
    html = render_index(rows, (out_dir / HISTORY_HTML).is_file(), lang)
    atomic_write(out_dir / INDEX_HTML, html)
