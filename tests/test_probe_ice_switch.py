"""The pieces of the probe's ICE restart that need no browser: the SDP
fragments of the WHEP PATCH, the Janus answer with new credentials (and its
requests, against a stand-in for the Janus session), and the connection
switch under a running session, tried on real aioice connections over
loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aioice
import pytest
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport

from probes.ice_host_pin import pin_host_addresses
from probes.joins.base import JoinError
from probes.joins.janus import _answer_exchange
from probes.joins.sdpfrag import (
    MAX_FRAGMENT_CHARS,
    FragmentError,
    IceCredentials,
    parse_fragment,
    parse_ice,
    restart_fragment,
    with_ice,
)
from probes.rtc_seams import SwitchableIce

CANDIDATE = "1 1 udp 2130706431 10.0.0.2 40000 typ host"


def test_restart_fragment_carries_credentials_candidates_and_the_end() -> None:
    text = restart_fragment(IceCredentials("uf", "pw" * 12, (CANDIDATE,)), mid="0")
    lines = text.split("\r\n")
    assert lines[:4] == ["a=ice-ufrag:uf", "a=ice-pwd:" + "pw" * 12, "m=audio 9 RTP/AVP 0",
                         "a=mid:0"]
    assert f"a=candidate:{CANDIDATE}" in lines
    assert lines[-2:] == ["a=end-of-candidates", ""]


def test_parse_fragment_reads_the_first_section_only() -> None:
    text = ("a=ice-lite\r\na=ice-ufrag:AbCd\r\na=ice-pwd:secretpassword0123456789\r\n"
            "m=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
            f"a=candidate:{CANDIDATE}\r\n"
            "m=video 9 RTP/AVP 0\r\na=mid:1\r\na=candidate:2 1 udp 1 10.0.0.3 1 typ host\r\n")
    got = parse_fragment(text)
    assert got == IceCredentials("AbCd", "secretpassword0123456789", (CANDIDATE,), lite=True)
    # What the probe sends, it can read back.
    sent = IceCredentials("x1", "y" * 22, (CANDIDATE,))
    assert parse_fragment(restart_fragment(sent, "v")) == sent


@pytest.mark.parametrize("text", ["", "a=ice-ufrag:only\r\n", "a=ice-pwd:only\r\n",
                                  "a=ice-ufrag:u\r\n" + "x" * MAX_FRAGMENT_CHARS])
def test_parse_fragment_refuses_what_cannot_restart(text: str) -> None:
    with pytest.raises(FragmentError):
        parse_fragment(text)


async def _pair() -> tuple[aioice.Connection, aioice.Connection]:
    """Two connected aioice agents on loopback: (probe side, server side)."""
    probe = aioice.Connection(ice_controlling=True)
    server = aioice.Connection(ice_controlling=False)
    await asyncio.gather(probe.gather_candidates(), server.gather_candidates())
    for a, b in ((probe, server), (server, probe)):
        for c in b.local_candidates:
            await a.add_remote_candidate(c)
        await a.add_remote_candidate(None)
        a.remote_username, a.remote_password = b.local_username, b.local_password
    await asyncio.wait_for(asyncio.gather(probe.connect(), server.connect()), 10)
    return probe, server


@pytest.fixture
async def loopback() -> AsyncIterator[None]:
    pin_host_addresses(["127.0.0.1"])
    yield
    pin_host_addresses(None)


def _transport_on(connection: aioice.Connection) -> RTCIceTransport:
    """aiortc's ICE transport, as it stands over ``connection`` once joined."""
    transport = RTCIceTransport(RTCIceGatherer(iceServers=[]))
    transport._connection = connection
    transport._recv = connection.recv
    transport._send = connection.send
    return transport


@pytest.mark.timeout(30)
async def test_a_switch_carries_a_waiting_receive_over_to_the_new_path(loopback: None) -> None:
    old_probe, old_server = await _pair()
    new_probe, new_server = await _pair()
    transport = _transport_on(old_probe)
    ice = SwitchableIce(transport)
    try:
        await old_server.send(b"before")
        assert await asyncio.wait_for(transport._recv(), 5) == b"before"
        # aiortc's DTLS task waits like this, looking ``_recv`` up each time.
        waiting = asyncio.ensure_future(transport._recv())
        events = asyncio.ensure_future(ice.get_event())  # as RTCIceTransport watches
        await asyncio.sleep(0.05)
        await new_server.send(b"early")  # reaches the new path before the switch
        await asyncio.sleep(0.05)
        await ice.switch(new_probe)
        await asyncio.sleep(0.05)
        # The old connection's end is not the session's end.
        assert not events.done()
        assert await asyncio.wait_for(waiting, 5) == b"early"
        await new_server.send(b"after")
        assert await asyncio.wait_for(transport._recv(), 5) == b"after"
        await transport._send(b"reply")
        assert await asyncio.wait_for(new_server.recv(), 5) == b"reply"
        assert ice.local_username == new_probe.local_username  # delegated to the new one
        # Closing for good still ends the session, as aiortc expects.
        await ice.close()
        event = await asyncio.wait_for(events, 5)
        assert isinstance(event, aioice.ice.ConnectionClosed)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(transport._recv(), 5)
    finally:
        for c in (old_probe, old_server, new_probe, new_server):
            await c.close()


ANSWER = (
    "v=0\r\no=- 3901 7 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE v a\r\n"
    "m=video 40000 UDP/TLS/RTP/SAVPF 100\r\nc=IN IP4 10.0.0.2\r\na=recvonly\r\na=mid:v\r\n"
    "a=rtpmap:100 VP8/90000\r\n"
    "a=candidate:old1 1 udp 2130706431 10.0.0.2 40000 typ host\r\n"
    "a=candidate:old2 1 udp 1694498815 192.0.2.1 40000 typ srflx raddr 10.0.0.2 rport 40000\r\n"
    "a=end-of-candidates\r\na=ice-ufrag:olduf\r\na=ice-pwd:oldpasswordoldpassword\r\n"
    "a=fingerprint:sha-256 AB:CD\r\na=setup:active\r\n"
    "m=audio 40000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 10.0.0.2\r\na=recvonly\r\na=mid:a\r\n"
    "a=candidate:old1 1 udp 2130706431 10.0.0.2 40000 typ host\r\n"
    "a=end-of-candidates\r\na=ice-ufrag:olduf\r\na=ice-pwd:oldpasswordoldpassword\r\n"
    "a=fingerprint:sha-256 AB:CD\r\na=setup:active\r\n"
)


def test_with_ice_puts_new_credentials_and_candidates_in_and_nothing_else() -> None:
    new = IceCredentials("newuf", "n" * 24, (CANDIDATE, "2 1 udp 5 10.0.0.9 41000 typ host"))
    text = with_ice(ANSWER, new)
    assert "olduf" not in text and "oldpassword" not in text and "old1" not in text
    assert text.count("a=ice-ufrag:newuf") == 2 and text.count("a=ice-pwd:" + "n" * 24) == 2
    assert text.count(f"a=candidate:{CANDIDATE}") == 2  # in each section that had some
    assert text.count("a=end-of-candidates") == 2
    # A renegotiated description: the o= version goes up, the session id stays.
    assert "o=- 3901 8 IN IP4 0.0.0.0" in text
    # DTLS is not restarted: fingerprint and role as they were; so is the rest.
    kept = [line for line in ANSWER.split("\r\n")
            if not line.startswith(("a=candidate:", "a=ice-", "o="))]
    assert [line for line in text.split("\r\n")
            if not line.startswith(("a=candidate:", "a=ice-", "o="))] == kept
    # What the probe sends, it (and the server) reads back.
    assert parse_ice(text) == new
    # Candidates stay where they were, before the section's end-of-candidates.
    lines = text.split("\r\n")
    first = lines.index(f"a=candidate:{CANDIDATE}")
    assert lines[first + 1].startswith("a=candidate:2 ") and \
        lines[first + 2] == "a=end-of-candidates"


def test_with_ice_refuses_a_description_without_ice() -> None:
    with pytest.raises(FragmentError):
        with_ice("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 100\r\n",
                 IceCredentials("u", "p" * 22, (CANDIDATE,)))


def test_parse_ice_reads_an_offer_bundled_on_its_first_section() -> None:
    offer = ANSWER.replace("olduf", "janusuf").replace("a=setup:active", "a=setup:actpass")
    got = parse_ice(offer)
    assert got.ufrag == "janusuf" and got.pwd == "oldpasswordoldpassword"
    assert got.candidates == ("old1 1 udp 2130706431 10.0.0.2 40000 typ host",
                              "old2 1 udp 1694498815 192.0.2.1 40000 typ srflx raddr 10.0.0.2 "
                              "rport 40000")


class _JanusStandIn:
    """Answers plugin messages as the Janus session would: a restart request
    with ``offer``, anything else with an empty event; keeps what was sent."""

    def __init__(self, offer: str) -> None:
        self.offer = offer
        self.sent: list[tuple[int, dict[str, Any], dict[str, Any] | None]] = []

    async def message(self, handle: int, body: dict[str, Any],
                      jsep: dict[str, Any] | None = None) -> dict[str, Any]:
        self.sent.append((handle, body, jsep))
        if body.get("request") in ("watch", "restart"):
            return {"janus": "event", "jsep": {"type": "offer", "sdp": self.offer}}
        return {"janus": "event"}


JANUS_OFFER = ANSWER.replace("olduf", "janusuf").replace("a=setup:active", "a=setup:actpass")


async def test_janus_restart_answers_the_new_offer_on_the_same_handle() -> None:
    janus = _JanusStandIn(JANUS_OFFER.replace("janusuf", "janusuf2"))
    watch = {"request": "watch", "id": 7, "restart": True}
    exchange = _answer_exchange(janus, 42, watch, {"request": "start"},  # type: ignore[arg-type]
                                [ANSWER], JANUS_OFFER, "watch (ICE restart)")
    first = IceCredentials("uf1", "p" * 22, (CANDIDATE,))
    remote = await exchange(first)
    assert remote.ufrag == "janusuf2"
    (h1, b1, j1), (h2, b2, j2) = janus.sent
    assert (h1, b1, j1) == (42, watch, None)
    assert (h2, b2) == (42, {"request": "start"}) and j2 is not None
    assert j2["type"] == "answer" and parse_ice(j2["sdp"]) == first
    assert "o=- 3901 8 " in j2["sdp"]
    # A second restart answers from the last answer Janus took.
    await exchange(IceCredentials("uf2", "q" * 22, (CANDIDATE,)))
    assert "o=- 3901 9 " in janus.sent[-1][2]["sdp"]  # type: ignore[index]


async def test_janus_restart_refuses_an_offer_with_a_new_dtls_fingerprint() -> None:
    janus = _JanusStandIn(JANUS_OFFER.replace("AB:CD", "EF:01"))
    exchange = _answer_exchange(janus, 42, {"request": "restart"},  # type: ignore[arg-type]
                                {"request": "ack"}, [ANSWER], JANUS_OFFER, "textroom restart")
    with pytest.raises(JoinError, match="new DTLS fingerprint"):
        await exchange(IceCredentials("uf1", "p" * 22, (CANDIDATE,)))
    assert [b for _, b, _ in janus.sent] == [{"request": "restart"}]  # no answer sent
