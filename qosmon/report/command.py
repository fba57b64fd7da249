"""``qosmon report --show ID --out DIR [--store URL] [--lang en|zh]
[--zone REGION=Area/City]...``: write the HTML report of a stored show (in
English or Simplified Chinese, regions' local times from the built-in table
or ``--zone``) and refresh the folder's index."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qosmon.i18n import DEFAULT_LANGUAGE, LANGUAGES
from qosmon.store.url import add_store_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--show", required=True, metavar="ID", help="the show's id")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder for the report and its index (created if missing)")
    add_store_argument(parser)
    parser.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE,
                        help=f"language of the report and the index (default {DEFAULT_LANGUAGE})")
    parser.add_argument("--zone", action="append", default=[], metavar="REGION=Area/City",
                        help="a region's local time zone, shown next to UTC (repeatable)")


def main(args: argparse.Namespace) -> int:
    # The store backends pull in their client libraries; load them only here.
    from qosmon.regions import ZoneError, parse_zones
    from qosmon.report.data import UnknownShowError, load_show_data
    from qosmon.report.output import write_report
    from qosmon.store import open_store
    from qosmon.store.base import StoreError

    try:
        zones = parse_zones(args.zone)
    except ZoneError as exc:
        print(f"qosmon report: {exc}", file=sys.stderr)
        return 2
    # Read-only: a mistyped path says "no such store" instead of creating one.
    store = open_store(args.store, read_only=True)
    try:
        try:
            data = load_show_data(store, args.show)
        except UnknownShowError as exc:
            print(f"qosmon report: {exc}", file=sys.stderr)
            return 2
        except StoreError as exc:
            print(f"qosmon report: reading show {args.show!r} failed: {exc}", file=sys.stderr)
            return 1
    finally:
        store.close()
    try:
        path = write_report(data, args.out, lang=args.lang, zones=zones)
    except OSError as exc:
        print(f"qosmon report: cannot write to {str(args.out)!r}: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
