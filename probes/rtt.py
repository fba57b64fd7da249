"""Round-trip time from ICE consent-freshness checks (RFC 7675).

A receive-only viewer has no RTCP-based RTT (that needs sender reports about
its own media). But every ICE peer (Janus, browsers, aiortc) must answer STUN
binding requests on the selected pair; aioice sends one every ~5 s for
consent. This module sends the same request once per ``interval_s`` on the
nominated pair, through aioice's own socket (:mod:`probes.rtc_seams`), and
times the answer with a monotonic clock. One request in flight at a time, no
retransmission (a retransmitted request would make the timing ambiguous); no
answer within ``timeout_s`` is a miss, not a number.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from probes.rtc_seams import timed_binding_request


async def measure_once(connection: Any, timeout_s: float = 3.0) -> float | None:
    """One binding request on the nominated pair; the RTT in ms, or None."""
    timed = await timed_binding_request(connection, timeout_s, time.monotonic)
    if timed is None:
        return None
    sent, answered = timed
    return (answered - sent) * 1000.0


async def run_rtt_checks(
    connection: Any,
    on_rtt: Callable[[float], None],
    interval_s: float = 1.0,
    timeout_s: float = 3.0,
    on_asked: Callable[[], None] | None = None,
) -> None:
    """Check until cancelled; ``on_rtt`` gets each answered RTT in ms,
    ``on_asked`` is told as each check goes out."""
    while True:
        started = time.monotonic()
        if on_asked is not None:
            on_asked()
        rtt = await measure_once(connection, timeout_s)
        if rtt is not None:
            on_rtt(rtt)
        await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
