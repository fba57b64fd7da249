"""``qosmon history --store URL --out DIR [--since DATE] [--until DATE]
[--change DATE[=label]]... [--zone REGION=Area/City]... [--lang en|zh]``:
write ``DIR/history.html`` and ``DIR/history.json`` over the stored shows."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from qosmon.history.analysis import Change
from qosmon.i18n import LANGUAGES
from qosmon.store.url import add_store_argument


def parse_date(text: str) -> float:
    """``2026-11-20`` or ``2026-11-20T18:00`` (UTC unless an offset is given)."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_change(text: str) -> Change:
    date, _, label = text.partition("=")
    return Change(ts=parse_date(date), label=label or date)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder for history.html and history.json (usually the reports "
                             "folder, so the shows' points link to their reports)")
    parser.add_argument("--since", type=parse_date, metavar="DATE",
                        help="only shows that started on or after this (UTC)")
    parser.add_argument("--until", type=parse_date, metavar="DATE",
                        help="only shows that started before this (UTC)")
    parser.add_argument("--change", type=parse_change, action="append", default=[],
                        metavar="DATE[=label]",
                        help="compare the regions before and after this date (repeatable)")
    parser.add_argument("--zone", action="append", default=[], metavar="REGION=Area/City",
                        help="a region's local time zone for the time-slot table (repeatable)")
    parser.add_argument("--lang", choices=LANGUAGES, default="en",
                        help="language of the page (default en)")


def main(args: argparse.Namespace) -> int:
    from qosmon.history.analysis import analyse
    from qosmon.history.collect import load_summaries
    from qosmon.history.render import write_history
    from qosmon.regions import ZoneError, parse_zones
    from qosmon.store import open_store
    from qosmon.store.base import StoreError

    try:
        zones = parse_zones(args.zone)
    except ZoneError as exc:
        print(f"qosmon history: {exc}", file=sys.stderr)
        return 2
    if args.since is not None and args.until is not None and args.since >= args.until:
        print("qosmon history: --since must be before --until", file=sys.stderr)
        return 2
    # Read-only: a mistyped path says "no such store" instead of creating one.
    store = open_store(args.store, read_only=True)
    try:
        summaries, computed = load_summaries(store, args.since, args.until, now=time.time())
    except StoreError as exc:
        print(f"qosmon history: reading the store failed: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if computed:
        print(f"qosmon history: {computed} show(s) had no stored summary and were summarized "
              "from their raw data", file=sys.stderr)
    history = analyse(summaries, args.change, zones, args.since, args.until)
    try:
        html, js = write_history(history, args.out, args.lang)
    except OSError as exc:
        print(f"qosmon history: cannot write to {str(args.out)!r}: {exc}", file=sys.stderr)
        return 2
    print(html)
    print(js)
    return 0
