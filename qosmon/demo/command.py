"""``qosmon demo``: run a complete short live show on this machine."""

from __future__ import annotations

import argparse
import asyncio
import time
from importlib import resources
from pathlib import Path

from qosmon.configfile import ConfigError
from qosmon.demo.scenario import load_scenario
from qosmon.demo.show import DemoShow, print_summary
from qosmon.store.url import DEFAULT_STORE_URL, add_store_argument

# Show ids are at most 64 characters; the run suffix takes 16 of them.
_RUN_SUFFIX = "-%Y%m%dT%H%M%S"
_MAX_SHOW_ID = 64


def default_scenario() -> Path:
    """The scenario shipped with the repository, or inside the package when
    installed without it."""
    repo = Path(__file__).resolve().parents[2] / "config" / "demo-scenario.toml"
    if repo.exists():
        return repo
    return Path(str(resources.files("qosmon.demo") / "demo-scenario.toml"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", type=Path, default=None,
                        help="scenario file (default: config/demo-scenario.toml)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="show length in seconds (faults after it are dropped)")
    parser.add_argument("--out", type=Path, default=Path("reports/demo"), metavar="DIR",
                        help="where the report, database and alert log go")
    add_store_argument(
        parser, default=None,
        what=f"where the demo stores its shows (default OUT/{DEFAULT_STORE_URL}; "
             "each run is a show of its own there)",
    )


def run_show_id(base: str, start_ts: float) -> str:
    """The show id of one demo run: the scenario's, suffixed with the start
    time (UTC), so runs into one store stay apart."""
    suffix = time.strftime(_RUN_SUFFIX, time.gmtime(start_ts))
    return base[: _MAX_SHOW_ID - len(suffix)] + suffix


def main(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario or default_scenario())
    if args.duration is not None:
        if args.duration < 20:
            print("qosmon demo: --duration must be at least 20 s", flush=True)
            return 2
        scenario.show.duration_s = args.duration
        scenario.faults = [f for f in scenario.faults if f.at_s < args.duration]
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {args.out}: cannot create it: {exc.strerror or exc}") from None
    scenario.show.id = run_show_id(scenario.show.id, time.time())
    store = args.store or str(args.out / DEFAULT_STORE_URL)
    result = asyncio.run(DemoShow(scenario, args.out, store_url=store).run())
    print_summary(result)
    print(f"Store: {store} (show {result.show_id})", flush=True)
    return 0
