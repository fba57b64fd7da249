"""An ICE restart under a running session, whatever the signalling.

Every join that restarts ICE does the same around its own signalling: gather
a new aioice agent (new credentials, new sockets), hand its credentials and
candidates to the server and get the server's new ones back (the join's
``exchange``: a WHEP PATCH, a Janus ``watch``/``start``), run the checks on
the new agent, and move the running DTLS/SRTP session onto it
(:meth:`probes.rtc_seams.SwitchableIce.switch`). The old path is left as it
is until the new one works, so a restart that fails changes nothing the
viewer's rejoin would not replace anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aioice
from aiortc import RTCConfiguration

from probes.joins.base import JoinError
from probes.joins.sdpfrag import IceCredentials
from probes.rtc_seams import SwitchableIce, new_ice_connection

log = logging.getLogger(__name__)

ICE_RESTART_TIMEOUT_S = 8.0  # gather, signalling and checks, together

# Sends the new local credentials and candidates to the server, returns the
# server's new ones; raises JoinError naming what the server said.
Exchange = Callable[[IceCredentials], Awaitable[IceCredentials]]


async def restart_ice(
    ice: SwitchableIce,
    config: RTCConfiguration,
    exchange: Exchange,
    what: str,
    timeout_s: float = ICE_RESTART_TIMEOUT_S,
) -> None:
    """Restart ICE under ``ice`` within ``timeout_s``; raise :class:`JoinError`
    (its text starting with ``what``) when it cannot."""
    try:
        await asyncio.wait_for(_restart(ice, config, exchange, what), timeout_s)
    except TimeoutError:
        raise JoinError(f"{what}: took longer than {timeout_s:g} s") from None


async def _restart(
    ice: SwitchableIce, config: RTCConfiguration, exchange: Exchange, what: str
) -> None:
    new = new_ice_connection(config, controlling=ice.ice_controlling)
    try:
        await new.gather_candidates()
        local = IceCredentials(new.local_username, new.local_password,
                               tuple(c.to_sdp() for c in new.local_candidates))
        remote = await exchange(local)
        try:
            candidates = [aioice.Candidate.from_sdp(c) for c in remote.candidates]
        except (ValueError, IndexError) as exc:
            raise JoinError(f"{what}: a server candidate is not usable: {exc}") from None
        log.debug("%s: %d local, %d remote candidates", what, len(local.candidates),
                  len(candidates))
        new.remote_username = remote.ufrag
        new.remote_password = remote.pwd
        new.remote_is_lite = remote.lite
        for candidate in candidates:
            await new.add_remote_candidate(candidate)
        await new.add_remote_candidate(None)
        try:
            await new.connect()
        except ConnectionError:
            raise JoinError(f"{what}: no candidate pair answered") from None
    except BaseException:
        await new.close()
        raise
    await ice.switch(new)
