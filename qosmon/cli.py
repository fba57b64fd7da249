"""The ``qosmon`` command. Each subcommand lives with the concept it drives;
this table only wires them up, importing each lazily so ``qosmon detect`` does
not pay for aiortc."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from qosmon import __version__
from qosmon.configfile import ConfigError
from qosmon.store.base import StoreError

# name -> (module, help). The module has add_arguments(parser) and main(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("qosmon.demo.command", "run a complete live show on this machine and report on it"),
    "serve": ("qosmon.collector.command", "run the collector (HTTP API, store, live diagnosis)"),
    "probe": ("probes.command", "run a probe: watch streams as a real WebRTC viewer"),
    "detect": ("qosmon.detection.command", "score a timestamp,value CSV for anomalies, online"),
    "localize": ("qosmon.diagnosis.localize_command", "find root-cause combinations in a CSV"),
    "diagnose": ("qosmon.diagnosis.command", "re-run diagnosis on a stored show"),
    "report": ("qosmon.report.command", "write the HTML report of a stored show"),
    "history": ("qosmon.history.command", "write the history page over the stored shows"),
    "alert-test": ("qosmon.alerting.command", "send a test alert through each configured route"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qosmon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"qosmon {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        # Arguments are declared by the module; import it only for its own
        # subcommand, or when listing help for all.
        wanted = next((a for a in argv if not a.startswith("-")), None)
        if wanted not in (name, None):
            continue
        importlib.import_module(module_name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(args._module)
    try:
        return int(module.main(args))
    except ConfigError as exc:
        print(f"qosmon {args.command}: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"qosmon {args.command}: store: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
