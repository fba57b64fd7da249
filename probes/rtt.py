"""Round-trip time from ICE consent-freshness checks (RFC 7675).

A receive-only viewer has no RTCP-based RTT (that needs sender reports about
its own media). But every ICE peer (Janus, browsers, aiortc) must answer STUN
binding requests on the selected pair; aioice sends one every ~5 s for
consent. This module sends the same request once per ``interval_s`` on the
nominated pair, through aioice's own socket, and times the answer with a
monotonic clock. One request in flight at a time, no retransmission (a
retransmitted request would make the timing ambiguous); no answer within
``timeout_s`` is a miss, not a number.

Touches aioice internals (``Connection._nominated``, ``build_request``,
``StunProtocol.transactions``), checked against aioice 0.13.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aioice import stun

log = logging.getLogger(__name__)


class _TimedTransaction:
    """Registered in aioice's transaction table to receive our one answer."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.future: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def response_received(self, message: stun.Message, addr: tuple[str, int]) -> None:
        if self.future.done():
            return
        if message.message_class != stun.Class.RESPONSE:
            return
        if not message.check_message_integrity(self._key):
            return
        self.future.set_result(time.monotonic())


async def measure_once(connection: Any, timeout_s: float = 3.0) -> float | None:
    """One binding request on the nominated pair; the RTT in ms, or None."""
    pair = connection._nominated.get(1)
    if pair is None or connection.remote_password is None:
        return None
    key = connection.remote_password.encode("utf8")
    request = connection.build_request(pair, nominate=False)
    request.add_message_integrity(key)
    tx = _TimedTransaction(key)
    protocol = pair.protocol
    protocol.transactions[request.transaction_id] = tx
    try:
        sent = time.monotonic()
        protocol.send_stun(request, pair.remote_addr)
        answered = await asyncio.wait_for(tx.future, timeout_s)
        return (answered - sent) * 1000.0
    except (TimeoutError, OSError):
        return None
    finally:
        protocol.transactions.pop(request.transaction_id, None)


async def run_rtt_checks(
    connection: Any,
    on_rtt: Callable[[float], None],
    interval_s: float = 1.0,
    timeout_s: float = 3.0,
) -> None:
    """Check until cancelled; ``on_rtt`` gets each answered RTT in ms."""
    while True:
        started = time.monotonic()
        rtt = await measure_once(connection, timeout_s)
        if rtt is not None:
            on_rtt(rtt)
        await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
