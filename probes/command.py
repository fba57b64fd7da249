"""``qosmon probe``: watch streams as a real WebRTC viewer.

Long-running with ``--config FILE`` (samples go to the collector named there,
or to ``--output``); or a one-off check of one stream named on the command
line (``--whep URL`` or ``--janus URL --mountpoint ID``) writing JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import TextIO

from pydantic import ValidationError

from probes.agent import ProbeAgent
from probes.config import ProbeConfig
from probes.joins.credentials import CredentialError, SecretSource
from probes.rtc_seams import SeamError
from probes.sinks import JsonLinesSink, SampleSink
from probes.uplink import CollectorUplink
from qosmon.configfile import ConfigError, format_validation_error, load_model

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="probe config (TOML)")
    parser.add_argument("--duration", type=float, metavar="S",
                        help="stop after S seconds (default: run until interrupted)")
    parser.add_argument("--output", metavar="FILE|-",
                        help="write samples as JSON lines here instead of to the collector")
    one = parser.add_argument_group("one-off run (instead of streams from --config)")
    one.add_argument("--whep", metavar="URL", help="watch this WHEP endpoint")
    one.add_argument("--demo", metavar="URL",
                     help="watch this demo-origin WHEP endpoint (WHEP + chat echo)")
    one.add_argument("--janus", metavar="URL", help="Janus REST API root, e.g. http://h:8088/janus")
    one.add_argument("--mountpoint", type=int, metavar="ID", help="Janus streaming mountpoint")
    one.add_argument("--textroom", type=int, metavar="ROOM",
                     help="Janus TextRoom room for the chat check")
    one.add_argument("--region", default="local", help="region label (default: local)")
    one.add_argument("--probe-id", default="probe-cli", help="probe id (default: probe-cli)")
    one.add_argument("--isp", default="", help="ISP/network label")
    one.add_argument("--edge-node", default="", help="edge node label")
    one.add_argument("--show-id", default="adhoc", help="show id (default: adhoc)")
    one.add_argument("--ice-host", action="append", metavar="ADDR",
                     help="offer only this local address in ICE (repeatable)")
    one.add_argument("--token-env", metavar="VAR",
                     help="WHEP Bearer token / Janus token from this environment variable")
    one.add_argument("--token-file", metavar="FILE",
                     help="WHEP Bearer token / Janus token from this file")
    one.add_argument("--apisecret-env", metavar="VAR",
                     help="Janus API secret from this environment variable")
    one.add_argument("--apisecret-file", metavar="FILE", help="Janus API secret from this file")
    one.add_argument("--video-codecs", metavar="LIST",
                     help="video codecs to offer/accept, in order (default: vp8,h264)")


def _one_off_config(args: argparse.Namespace) -> dict[str, object]:
    if sum(x is not None for x in (args.whep, args.demo, args.janus)) != 1:
        raise ConfigError("name exactly one of --whep, --demo, --janus (or give --config)")
    stream: dict[str, object]
    if args.janus is not None:
        if args.mountpoint is None:
            raise ConfigError("--janus needs --mountpoint ID")
        stream = {"join": "janus", "url": args.janus, "mountpoint": args.mountpoint,
                  "textroom_room": args.textroom, "stream_id": f"mp{args.mountpoint}"}
    elif args.demo is not None:
        stream = {"join": "demo", "url": args.demo, "stream_id": "demo"}
    else:
        stream = {"join": "whep", "url": args.whep, "stream_id": "whep"}
    stream["show_id"] = args.show_id
    for key in ("token_env", "token_file", "apisecret_env", "apisecret_file"):
        if getattr(args, key) is not None:
            stream[key] = getattr(args, key)
    if args.video_codecs is not None:
        stream["video_codecs"] = [c.strip().lower() for c in args.video_codecs.split(",")]
    labels = {"probe_id": args.probe_id, "region": args.region, "isp": args.isp,
              "edge_node": args.edge_node}
    return {"labels": labels, "streams": [stream],
            **({"ice_host_addresses": args.ice_host} if args.ice_host else {})}


_STREAM_FLAGS = ("whep", "janus", "demo", "token_env", "token_file", "apisecret_env",
                 "apisecret_file", "video_codecs")


def check_credentials(config: ProbeConfig, source: str) -> None:
    """Every configured join secret can be read now (read again at each join,
    so a rotated file is picked up); the message names where, never the value."""
    for i, stream in enumerate(config.streams):
        for what, secret in (("token", stream.token_source),
                             ("apisecret", stream.apisecret_source)):
            try:
                secret.read()
            except CredentialError as exc:
                raise ConfigError(f"{source}: streams[{i}] ({stream.show_id}/"
                                  f"{stream.stream_id}) {what}: {exc}") from None
    for name, cred in config.credentials.items():
        for what, secret in (("token", SecretSource(cred.token_env, cred.token_file)),
                             ("apisecret", SecretSource(cred.apisecret_env,
                                                        cred.apisecret_file))):
            try:
                secret.read()
            except CredentialError as exc:
                raise ConfigError(f"{source}: credentials.{name} {what}: {exc}") from None


def build_config(args: argparse.Namespace) -> ProbeConfig:
    if args.config:
        if any(getattr(args, k) is not None for k in _STREAM_FLAGS):
            raise ConfigError("give either --config or a stream on the command line, not both")
        config = load_model(args.config, ProbeConfig)
        if args.ice_host:
            config.ice_host_addresses = list(args.ice_host)
        check_credentials(config, args.config)
        return config
    try:
        config = ProbeConfig.model_validate(_one_off_config(args))
    except ValidationError as exc:
        raise ConfigError(format_validation_error("command line", exc)) from None
    check_credentials(config, "command line")
    return config


def build_sink(args: argparse.Namespace, config: ProbeConfig) -> tuple[SampleSink, TextIO | None]:
    if args.output is not None:
        if args.output == "-":
            return JsonLinesSink(sys.stdout), None
        try:
            f = open(args.output, "a", encoding="utf-8")  # noqa: SIM115 - closed by main
        except OSError as exc:
            raise ConfigError(f"--output {args.output}: {exc.strerror}") from None
        return JsonLinesSink(f), f
    if config.collector_url is None:
        if args.config:
            raise ConfigError(f"{args.config}: no collector_url; give --output FILE|- to "
                              "write samples locally")
        return JsonLinesSink(sys.stdout), None
    return CollectorUplink.from_config(config), None


async def run(config: ProbeConfig, sink: SampleSink, duration_s: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if duration_s is not None:
        loop.call_later(duration_s, stop.set)
    try:
        await ProbeAgent(config, sink).run(stop)
    finally:
        await sink.aclose()


def main(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration must be > 0")
    config = build_config(args)
    sink, owned = build_sink(args, config)
    log.info("probe %s (%s): watching %d stream(s)%s", config.labels.probe_id,
             config.labels.region, len(config.streams),
             " and those the collector assigns" if config.collector_url and config.assignment
             else "")
    try:
        asyncio.run(run(config, sink, args.duration))
    except SeamError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        if owned is not None:
            owned.close()
    return 0
