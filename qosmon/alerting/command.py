"""``qosmon alert-test``: send a test alert (firing, then resolved) through
every configured route and say, per route, whether it got through."""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from qosmon.alerting.config import AlertingConfig, RouteConfig
from qosmon.alerting.notifiers import DeliveryError, make_notifier
from qosmon.alerting.outbox import new_delivery_id
from qosmon.alerting.rules import MERCHANDISING, Notification
from qosmon.configfile import ConfigError, load_model
from qosmon.model import Alert, AlertStatus, Cause, Severity

TEST_SHOW = "qosmon-alert-test"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="alerting config (TOML), e.g. config/alerting.toml")
    parser.add_argument("--route", action="append", metavar="NAME",
                        help="test only this route (repeatable; default: all)")


def main(args: argparse.Namespace) -> int:
    config = load_model(args.config, AlertingConfig)
    routes = config.routes
    if args.route:
        unknown = sorted(set(args.route) - {r.name for r in routes})
        if unknown:
            raise ConfigError(f"{args.config}: no route named {', '.join(unknown)}")
        routes = [r for r in routes if r.name in args.route]
    if not routes:
        raise ConfigError(f"{args.config}: no routes configured")
    results = asyncio.run(_test_all(routes))
    width = max(len(r.name) for r in routes)
    for route, error in zip(routes, results, strict=True):
        verdict = "OK" if error is None else f"FAILED: {error}"
        print(f"{route.name:<{width}}  {route.kind.value:<12} {verdict}")
    return 0 if all(e is None for e in results) else 1


def _test_notification(route: RouteConfig, status: AlertStatus, now: float) -> Notification:
    audience = route.serves[0]
    alert = Alert(
        key=f"qosmon:{TEST_SHOW}:{route.name}",
        status=status,
        show_id=TEST_SHOW,
        region="test",
        cause=Cause.NETWORK_FINE if audience == MERCHANDISING else Cause.UNKNOWN,
        severity=Severity.INFO,
        route=audience,
        starts_at=now,
        ends_at=now if status == AlertStatus.RESOLVED else None,
        summary=f"Test alert from qosmon alert-test through route {route.name}; "
                "no action needed.",
        evidence="sent by hand to check the route",
    )
    return Notification(group_key=f"qosmon:{TEST_SHOW}:{route.name}", show_id=TEST_SHOW,
                        region="test", route=audience, alerts=(alert,), ts=now,
                        delivery_id=new_delivery_id())


async def _test_all(routes: list[RouteConfig]) -> list[str | None]:
    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(_test_one(r, session) for r in routes)))


async def _test_one(route: RouteConfig, session: aiohttp.ClientSession) -> str | None:
    """None if both the firing and the resolved test alert were accepted."""
    try:
        notifier = make_notifier(route, session)
    except ConfigError as exc:
        return str(exc)
    now = time.time()
    for status in (AlertStatus.FIRING, AlertStatus.RESOLVED):
        try:
            await notifier.send(_test_notification(route, status, now))
        except DeliveryError as exc:
            return f"{status.value}: {exc.reason}"
    return None
