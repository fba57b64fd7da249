"""The ``qosmon`` command. Each subcommand lives with the concept it drives;
this table only wires them up, importing each lazily so ``qosmon detect`` does
not pay for aiortc."""

from __future__ import annotations

import argparse
import importlib
import sys

from qosmon import __version__
from qosmon.errors import ConfigError, InputError, NoSuchStore, StoreError, UnknownShowError
from qosmon.logs import LOG_FORMATS, configure_logging

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
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="-v: qosmon's debug messages; -vv: every library's too")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default=None,
                        help="log lines on stderr as text (default) or one JSON object each "
                             "(serve: also the config's log_format)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The subcommand is the first word that is not an option (nor the value
    # of --log-format); only its module is imported, or all of them for help.
    words = [a for i, a in enumerate(argv)
             if not a.startswith("-") and (i == 0 or argv[i - 1] != "--log-format")]
    wanted = words[0] if words else None
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        if wanted not in (name, None):
            continue
        importlib.import_module(module_name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    configure_logging(args.verbose, args.log_format or "text")
    module = importlib.import_module(args._module)
    try:
        return int(module.main(args))
    # Refusals a user can fix (a file, a value, a name): a message, exit 2.
    except (ConfigError, InputError, NoSuchStore, UnknownShowError) as exc:
        print(f"qosmon {args.command}: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"qosmon {args.command}: store: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
