"""Every reach of the probe into aiortc's and aioice's private names, in one place.

The probe measures below aiortc's public API: it sees each RTP packet before
aiortc unwraps retransmissions, keeps encoded frames away from the decoder,
sends its own NACKs and PLIs and transport-wide feedback, skips aiortc's
per-packet work it replaces (keeping what the sender relies on: receiver
reports and REMB where no transport-wide feedback is sent), times ICE
consent checks for RTT, pins the host addresses aioice offers, enlarges the
receive buffers of aioice's sockets and restarts ICE under a running session.
None of that is public API, so a new aiortc or aioice may rename what it
relies on. Rather than degrade silently (decoding quietly coming back, a dead
RTT task, attributes set on nothing), the probe calls :func:`check_seams` at
start: it looks up every private name used here and refuses to run, naming
the versions this was written for, if one is gone.

Nothing outside this module touches a private name of either library.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import aioice
import aioice.ice
import aiortc.codecs
import aiortc.rtcrtpreceiver
import aiortc.rtp
import pylibsrtp
from aioice import stun
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcicetransport import (
    ICE_TRANSPORT_POLICIES,
    RTCIceGatherer,
    RTCIceTransport,
    connection_kwargs,
)
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
)

from probes.remb import RembThrottle
from probes.rtp_parse import RTP_PACKET_FIELDS, Reader, extension_table, parse_rtp
from probes.sliding_rate import SlidingRate
from probes.twcc import FEEDBACK_INTERVAL_MS, TransportFeedbackLog

log = logging.getLogger(__name__)

WRITTEN_FOR = {"aiortc": "1.16.0", "aioice": "0.13.0"}

# Receiver methods wrapped or called (class attributes).
_RECEIVER_METHODS = (
    "_handle_rtp_packet",
    "_handle_rtcp_packet",
    "_send_rtcp_nack",
    "_send_rtcp_pli",
    "_send_rtcp",
)
# Receiver state read or replaced (set in ``__init__``, name-mangled).
_RECEIVER_STATE = (
    "decoder_queue",
    "codecs",
    "rtx_ssrc",
    "timestamp_mapper",
    "jitter_buffer",
    "started",
    "nack_generator",
    "kind",
    "remote_bitrate_estimator",
    "remote_streams",
    "rtcp_ssrc",
)
_PREFIX = "_RTCRtpReceiver__"
_ESTIMATOR = _PREFIX + "remote_bitrate_estimator"
_REMOTE_STREAMS = _PREFIX + "remote_streams"


class SeamError(RuntimeError):
    """aiortc/aioice no longer have a private name the probe relies on."""


def _installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _refuse(missing: list[str]) -> SeamError:
    wanted = ", ".join(f"{k} {v}" for k, v in WRITTEN_FOR.items())
    found = ", ".join(f"{k} {_installed(k)}" for k in WRITTEN_FOR)
    return SeamError(
        f"the probe cannot measure with this aiortc/aioice: {', '.join(missing)} "
        f"not found. It was written for {wanted}; installed: {found}. "
        "Install those versions (pyproject.toml pins them)."
    )


class _UnstartedTransport:
    """Enough of an RTCDtlsTransport for ``RTCRtpReceiver.__init__``."""

    state = "new"


_checked = False


def check_seams() -> None:
    """Look up every private name used below; raise :class:`SeamError` naming
    all that are missing. Needs a running event loop (aioice's protocol makes a
    future); cheap, and done once per process."""
    global _checked
    if _checked:
        return
    missing: list[str] = []
    for name in _RECEIVER_METHODS:
        if not callable(getattr(RTCRtpReceiver, name, None)):
            missing.append(f"aiortc RTCRtpReceiver.{name}()")
    for kind in ("video", "audio"):
        receiver = RTCRtpReceiver(kind, _UnstartedTransport())  # type: ignore[arg-type]
        for name in _RECEIVER_STATE:
            if not hasattr(receiver, _PREFIX + name):
                missing.append(f"aiortc RTCRtpReceiver.__{name} ({kind})")
        if hasattr(receiver, _PREFIX + "timestamp_mapper") and not hasattr(
            getattr(receiver, _PREFIX + "timestamp_mapper"), "_origin"
        ):
            missing.append("aiortc TimestampMapper._origin")
        jb = getattr(receiver, _PREFIX + "jitter_buffer", None)
        if jb is not None and not callable(getattr(jb, "add", None)):
            missing.append("aiortc JitterBuffer.add()")
        if not hasattr(receiver, "_enabled"):
            missing.append(f"aiortc RTCRtpReceiver._enabled ({kind})")
        rbe = getattr(receiver, _PREFIX + "remote_bitrate_estimator", None)
        if rbe is not None and not callable(getattr(rbe, "add", None)):
            missing.append("aiortc RemoteBitrateEstimator.add()")
        if rbe is not None and not callable(getattr(getattr(rbe, "incoming_bitrate", None),
                                                    "rate", None)):
            missing.append("aiortc RemoteBitrateEstimator.incoming_bitrate")
    stats_class = getattr(aiortc.rtcrtpreceiver, "StreamStatistics", None)
    if not callable(getattr(stats_class, "add", None)):
        missing.append("aiortc rtcrtpreceiver.StreamStatistics.add()")
    ice = RTCIceTransport(RTCIceGatherer())
    for name in ("_connection", "_recv", "_send"):
        if not hasattr(ice, name):
            missing.append(f"aiortc RTCIceTransport.{name}")
    if not hasattr(ice.iceGatherer, "_connection"):
        missing.append("aiortc RTCIceGatherer._connection")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        missing.append("aioice ice.get_host_addresses()")
    for name in ("_handle_rtp_data", "_handle_rtcp_data"):
        if not callable(getattr(RTCDtlsTransport, name, None)):
            missing.append(f"aiortc RTCDtlsTransport.{name}()")
    dtls = RTCDtlsTransport(ice, [RTCCertificate.generateCertificate()])
    for name in ("_rx_srtp", "_state", "_rtp_header_extensions_map", "_rtp_router",
                 _DTLS_PREFIX + "rx_bytes", _DTLS_PREFIX + "rx_packets"):
        if not hasattr(dtls, name):
            missing.append(f"aiortc RTCDtlsTransport.{name.replace(_DTLS_PREFIX, '__')}")
    if not isinstance(getattr(HeaderExtensionsMap(), _IDS, None), aiortc.rtp.HeaderExtensions):
        missing.append("aiortc HeaderExtensionsMap.__ids")
    if set(vars(RtpPacket())) != RTP_PACKET_FIELDS:
        missing.append(f"aiortc RtpPacket fields {sorted(RTP_PACKET_FIELDS)}")
    if not callable(getattr(getattr(dtls, "_rtp_router", None), "route_rtp", None)):
        missing.append("aiortc RtpRouter.route_rtp()")
    if not isinstance(getattr(DtlsState, "CONNECTED", None), DtlsState):
        missing.append("aiortc rtcdtlstransport.State.CONNECTED")
    conn = aioice.Connection(ice_controlling=False)
    for name in ("_nominated", "remote_password", "_queue", "_protocols"):
        if not hasattr(conn, name):
            missing.append(f"aioice Connection.{name}")
    if not callable(getattr(aioice.Connection, "build_request", None)):
        missing.append("aioice Connection.build_request()")
    protocol = aioice.ice.StunProtocol(conn)
    if not isinstance(getattr(protocol, "transactions", None), dict):
        missing.append("aioice StunProtocol.transactions")
    if not callable(getattr(protocol, "send_stun", None)):
        missing.append("aioice StunProtocol.send_stun()")
    pair = aioice.ice.CandidatePair(
        protocol, aioice.Candidate("1", 1, "udp", 1, "127.0.0.1", 9, "host"))
    for name in ("protocol", "remote_addr"):
        if not hasattr(pair, name):
            missing.append(f"aioice CandidatePair.{name}")
    tables = getattr(aiortc.codecs, "HEADER_EXTENSIONS", None)
    if not isinstance(tables, dict) or not all(
            isinstance(tables.get(kind), list) for kind in ("audio", "video")):
        missing.append("aiortc codecs.HEADER_EXTENSIONS (per-kind lists)")
    if "transport_sequence_number" not in getattr(aiortc.rtp.HeaderExtensions,
                                                  "__dataclass_fields__", {}):
        missing.append("aiortc rtp.HeaderExtensions.transport_sequence_number")
    if missing:
        raise _refuse(missing)
    _checked = True


def forget_check() -> None:
    """Make the next :func:`check_seams` look again (tests change the names)."""
    global _checked
    _checked = False


# -- aioice: host addresses -------------------------------------------------

_original_host_addresses = aioice.ice.get_host_addresses


def set_host_addresses(chooser: Callable[[bool, bool], list[str]] | None) -> None:
    """aioice looks this function up on its module each time it gathers."""
    aioice.ice.get_host_addresses = chooser or _original_host_addresses  # type: ignore[assignment]


# -- aioice: consent-check timing ------------------------------------------


def ice_connection(receiver: RTCRtpReceiver) -> Any:
    """The aioice connection under the receiver's transport."""
    return receiver.transport.transport._connection


class _TimedTransaction:
    """Registered in aioice's transaction table to receive our one answer."""

    def __init__(self, key: bytes, clock: Callable[[], float]) -> None:
        self._key = key
        self._clock = clock
        self.future: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def response_received(self, message: stun.Message, addr: tuple[str, int]) -> None:
        if self.future.done():
            return
        if message.message_class != stun.Class.RESPONSE:
            return
        if not message.check_message_integrity(self._key):
            return
        self.future.set_result(self._clock())


async def timed_binding_request(
    connection: Any, timeout_s: float, clock: Callable[[], float]
) -> tuple[float, float] | None:
    """One STUN binding request on the nominated pair, through aioice's own
    socket and transaction table: (sent, answered) on ``clock``, or None when
    there is no pair yet or no answer in time."""
    pair = connection._nominated.get(1)
    if pair is None or connection.remote_password is None:
        return None
    key = connection.remote_password.encode("utf8")
    request = connection.build_request(pair, nominate=False)
    request.add_message_integrity(key)
    tx = _TimedTransaction(key, clock)
    protocol = pair.protocol
    protocol.transactions[request.transaction_id] = tx
    try:
        sent = clock()
        protocol.send_stun(request, pair.remote_addr)
        # Not asyncio.wait_for: on Python 3.11, when the answer lands in the
        # same loop turn as a cancel of this task, wait_for returns the answer
        # and drops the cancel, and the RTT task (and the session waiting for
        # it to end) then runs on for ever.
        async with asyncio.timeout(timeout_s):
            answered = await tx.future
        return sent, answered
    except (TimeoutError, OSError):
        return None
    finally:
        protocol.transactions.pop(request.transaction_id, None)


# -- aiortc: the receiver -----------------------------------------------------


class _FrameTapQueue(queue.Queue):
    """Stands in for the receiver's decoder queue."""

    def __init__(self, on_frame: Callable[[Any, Any], None], decode: bool) -> None:
        super().__init__()
        self._on_frame = on_frame
        self._decode = decode

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # the stop sentinel must reach the decoder thread
            super().put(item, block, timeout)
            return
        self._on_frame(item[0], item[1])
        if self._decode:
            super().put(item, block, timeout)


class _NoFrames:
    """Stands in for aiortc's jitter buffer when the probe assembles the
    frames itself and nothing is decoded: saves its per-packet work (and its
    PLIs, which the probe then sends itself). aiortc only calls ``add``."""

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        return False, None


@dataclass(frozen=True)
class Feedback:
    """What to ask the sender for after a packet: NACK these sequence
    numbers, and/or a keyframe (PLI), for one media SSRC."""

    media_ssrc: int
    nack: list[int]
    pli: bool


class ReceiverSeam:
    """The private parts of one ``RTCRtpReceiver`` the probe uses."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        missing = [f"aiortc RTCRtpReceiver.__{n}" for n in _RECEIVER_STATE
                   if not hasattr(receiver, _PREFIX + n)]
        if missing:
            raise _refuse(missing)
        if getattr(receiver, _PREFIX + "started"):
            raise RuntimeError("install the tap before the receiver starts")
        self.receiver = receiver
        self._remb = RembThrottle()

    def tap(
        self,
        on_packet: Callable[[RtpPacket], Feedback | None],
        on_frame: Callable[[Any, Any], None],
        decode: bool,
        alone: Callable[[RTCRtpCodecParameters], bool] | None = None,
    ) -> None:
        """``on_packet`` sees every RTP packet (media and RTX, as received)
        before aiortc handles it, and may answer with feedback to send;
        ``on_frame`` sees every encoded frame aiortc's jitter buffer
        completes, which reaches the decoder only if ``decode``.

        Packets of a codec for which ``alone`` says yes are measured by the
        probe alone: of aiortc's per-packet work they get only what the
        sender relies on (:meth:`_sender_feedback`); RTX unwrapping,
        depayloading, the jitter buffer and the decoder are skipped."""
        receiver = self.receiver
        original: Callable[[RtpPacket, int], Awaitable[None]] = receiver._handle_rtp_packet
        codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, _PREFIX + "codecs")
        by_probe: dict[int, bool] = {}  # payload type -> measured by the probe alone
        feedback_only = self._sender_feedback
        arrivals = _TransportArrivals(receiver)
        estimator = getattr(receiver, _ESTIMATOR)
        if estimator is not None:
            # The same figures for a fraction of the per-packet work.
            estimator.incoming_bitrate = SlidingRate(1000, 8000)

        async def send_feedback(remb: RtcpPsfbPacket | None, feedback: Feedback | None) -> None:
            if remb is not None:
                await receiver._send_rtcp(remb)
            if feedback is not None:
                if feedback.nack:
                    await receiver._send_rtcp_nack(feedback.media_ssrc, feedback.nack)
                if feedback.pli:
                    await receiver._send_rtcp_pli(feedback.media_ssrc)

        async def handled_by_aiortc(packet: RtpPacket, arrival_time_ms: int,
                                    feedback: Feedback | None) -> None:
            await original(packet, arrival_time_ms)
            await send_feedback(None, feedback)

        def on_arrival(packet: RtpPacket, arrival_time_ms: int) -> Coroutine[Any, Any, None] | None:
            transport_seq = packet.extensions.transport_sequence_number
            if transport_seq is not None:
                arrivals.note(transport_seq, packet.ssrc)
            feedback = on_packet(packet)
            probe_only = by_probe.get(packet.payload_type)
            if probe_only is None:
                codec = codecs.get(packet.payload_type)
                probe_only = alone is not None and codec is not None and alone(codec)
                if codec is not None:  # known once the receiver started
                    by_probe[packet.payload_type] = probe_only
            if not probe_only:
                return handled_by_aiortc(packet, arrival_time_ms, feedback)
            remb = feedback_only(packet, arrival_time_ms)
            if remb is None and feedback is None:
                return None  # most packets: nothing to wait for
            return send_feedback(remb, feedback)

        async def tapped(packet: RtpPacket, arrival_time_ms: int) -> None:
            rest = on_arrival(packet, arrival_time_ms)
            if rest is not None:
                await rest

        setattr(receiver, _ON_ARRIVAL, on_arrival)
        receiver._handle_rtp_packet = tapped  # type: ignore[method-assign]
        setattr(receiver, _PREFIX + "decoder_queue", _FrameTapQueue(on_frame, decode))

    def _sender_feedback(self, packet: RtpPacket,
                         arrival_time_ms: int) -> RtcpPsfbPacket | None:
        """What aiortc's ``_handle_rtp_packet`` does for a packet that the
        sender relies on, and nothing else: REMB from abs-send-time (a
        libwebrtc sender without transport-wide feedback lowers its rate
        from it under a squeeze), throttled as a browser's receiver does
        (:mod:`probes.remb`), and the per-SSRC statistics its RTCP receiver
        reports are made of (RTX SSRCs included, as aiortc counts them
        before unwrapping). Returns the REMB packet to send, if one is due."""
        receiver = self.receiver
        if not receiver._enabled:
            return None
        streams: dict[int, Any] = getattr(receiver, _REMOTE_STREAMS)
        stats = streams.get(packet.ssrc)
        if stats is None:
            codec = getattr(receiver, _PREFIX + "codecs")[packet.payload_type]
            stats = streams[packet.ssrc] = aiortc.rtcrtpreceiver.StreamStatistics(
                codec.clockRate)
        stats.add(packet)
        estimator = getattr(receiver, _ESTIMATOR)
        abs_send_time = packet.extensions.abs_send_time
        if estimator is None or abs_send_time is None:
            return None
        estimate = estimator.add(
            abs_send_time=abs_send_time,
            arrival_time_ms=arrival_time_ms,
            payload_size=len(packet.payload) + packet.padding_size,
            ssrc=packet.ssrc,
        )
        rtcp_ssrc = getattr(receiver, _PREFIX + "rtcp_ssrc")
        if (rtcp_ssrc is None or estimate is None
                or not self._remb.send(estimate[0], arrival_time_ms)):
            return None
        return RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                              fci=pack_remb_fci(*estimate))

    def tap_rtcp(self, on_rtcp: Callable[[Any], None]) -> None:
        """``on_rtcp`` sees every RTCP packet routed to this receiver (sender
        reports among them) before aiortc handles it."""
        receiver = self.receiver
        original: Callable[[Any], Awaitable[None]] = receiver._handle_rtcp_packet

        async def tapped(packet: Any) -> None:
            on_rtcp(packet)
            await original(packet)

        receiver._handle_rtcp_packet = tapped  # type: ignore[method-assign]

    @property
    def kind(self) -> str:
        """"audio" or "video": known before the receiver has a track."""
        return str(getattr(self.receiver, _PREFIX + "kind"))

    def codec(self, payload_type: int) -> RTCRtpCodecParameters | None:
        codecs: dict[int, RTCRtpCodecParameters] = getattr(self.receiver, _PREFIX + "codecs")
        return codecs.get(payload_type)

    def rtx_media_ssrc(self, rtx_ssrc: int) -> int | None:
        rtx: dict[int, int] = getattr(self.receiver, _PREFIX + "rtx_ssrc")
        return rtx.get(rtx_ssrc)

    def skip_jitter_buffer(self) -> None:
        """The probe assembles frames itself: aiortc's jitter buffer, its
        frames and its PLIs are not needed."""
        setattr(self.receiver, _PREFIX + "jitter_buffer", _NoFrames())

    def own_nacks(self) -> None:
        """aiortc asks once per gap; the probe schedules its own NACKs."""
        setattr(self.receiver, _PREFIX + "nack_generator", None)

    def timestamp_origin(self) -> int | None:
        """aiortc rebases frame timestamps to the first frame: its origin."""
        origin: int | None = getattr(self.receiver, _PREFIX + "timestamp_mapper")._origin
        return origin



# -- aioice: socket receive buffers ---------------------------------------------

# What the probe asks for each media socket. The kernel's default (about 90
# datagrams of 1200 bytes) is less than one H.264 keyframe burst plus the
# time one event loop needs to serve the same burst on every other stream of
# the show (all viewers of a mountpoint get the keyframe at once): a busy
# probe then loses datagrams at its own socket and reports them as path loss.
RECEIVE_BUFFER_BYTES = 1 << 20
_SO_RCVBUFFORCE = 33  # Linux; Python's socket module does not name it


def _sockets(pc: RTCPeerConnection) -> list[socket.socket]:
    """Every socket aioice has open for ``pc`` now (after an ICE restart, the
    new path's), once each: bundled transceivers share one connection."""
    out: list[socket.socket] = []
    for transceiver in pc.getTransceivers():
        connection = ice_connection(transceiver.receiver)
        for protocol in list(connection._protocols):
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None and sock.fileno() >= 0 and sock not in out:
                out.append(sock)
    return out


def enlarge_receive_buffers(pc: RTCPeerConnection, size: int = RECEIVE_BUFFER_BYTES) -> int:
    """Ask for ``size`` bytes of receive buffer on every socket aioice opened
    for ``pc`` (SO_RCVBUFFORCE where the process may, else SO_RCVBUF, which
    net.core.rmem_max caps). Returns the smallest size the kernel granted
    (it reports twice what it holds for data), 0 when there was no socket."""
    granted: list[int] = []
    for sock in _sockets(pc):
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
        except OSError:  # not allowed (no CAP_NET_ADMIN): capped by rmem_max
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            except OSError as exc:
                log.debug("could not enlarge a receive buffer: %s", exc)
        granted.append(int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)))
    return min(granted, default=0)


def socket_filenos(pc: RTCPeerConnection) -> list[int]:
    """The file descriptors of :func:`_sockets`, for reading their kernel
    counters."""
    return [sock.fileno() for sock in _sockets(pc)]


# -- aiortc: transport-wide congestion control feedback ----------------------

# One feedback log per transport: under BUNDLE the audio and video receivers
# share a DTLS transport and its transport-wide sequence numbers.
_feedback_logs: weakref.WeakKeyDictionary[Any, _FeedbackSender] = weakref.WeakKeyDictionary()


class _RawRtcp:
    """An RTCP packet aiortc has no class for, as ``_send_rtcp`` takes one."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __bytes__(self) -> bytes:
        return self.data


class _FeedbackSender:
    """Reports one transport's arrivals every feedback interval, through the
    receiver that saw its first packet, while the transport is up."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self.receiver = receiver
        self.log = TransportFeedbackLog()
        self.media_ssrc = 0
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(FEEDBACK_INTERVAL_MS / 1000, self._send)

    def _send(self) -> None:
        transport = self.receiver.transport
        if transport.state in ("closed", "failed") or not self.receiver._enabled:
            self._timer = None
            return
        rtcp_ssrc = getattr(self.receiver, _PREFIX + "rtcp_ssrc")
        if rtcp_ssrc is not None and transport.state == "connected":
            for data in self.log.take(rtcp_ssrc, self.media_ssrc):
                _drive(self.receiver._send_rtcp(_RawRtcp(data)))  # type: ignore[arg-type]
        self.start()


class _TransportArrivals:
    """Where a tapped receiver notes the transport-wide sequence numbers of
    its packets: the feedback log of the transport it is on (looked up
    again if aiortc moved it onto a bundled one)."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self.receiver = receiver
        self.transport: Any = None
        self.sender: _FeedbackSender | None = None

    def note(self, transport_seq: int, ssrc: int) -> None:
        transport = self.receiver.transport
        if transport is not self.transport or self.sender is None:
            # The sender gets transport-wide feedback for this receiver's
            # packets: no REMB from them, as a browser's receiver sends one
            # or the other (a REMB from a second estimator would cap the
            # sender's own estimate). Decoding or not.
            setattr(self.receiver, _ESTIMATOR, None)
            sender = _feedback_logs.get(transport)
            if sender is None:
                sender = _feedback_logs[transport] = _FeedbackSender(self.receiver)
                sender.start()
            self.transport, self.sender = transport, sender
        self.sender.media_ssrc = ssrc
        self.sender.log.arrived(transport_seq, time.monotonic_ns() // 1000)


# -- aiortc/aioice: media handled as it arrives ----------------------------------

# What aiortc does with each SRTP datagram, for the probe: aioice first tries
# to parse it as STUN (an exception per packet), queues it, and aiortc's DTLS
# task wakes to take it from the queue, decrypt it and hand it on, one event
# loop round trip per packet. The probe, which has hundreds of streams' packets
# a second to take in on one loop, does the same work in the socket's own
# callback: a datagram whose first byte says RTP/RTCP (128-191, never STUN
# or DTLS) is decrypted and routed at once; DTLS (the chat's SCTP) and STUN
# take aioice's and aiortc's own path as before.
_DTLS_PREFIX = "_RTCDtlsTransport__"
_RX_BYTES = _DTLS_PREFIX + "rx_bytes"
_RX_PACKETS = _DTLS_PREFIX + "rx_packets"
_MEDIA_HOOKED = "_qosmon_media_on_arrival"
# A tapped receiver's synchronous handling of one packet (see ``tap``).
_ON_ARRIVAL = "_qosmon_on_arrival"
_carrying: set[asyncio.Future[None]] = set()  # packets whose handling had to wait
# Milliseconds between 1900 (the NTP epoch) and 1970.
_NTP_UNIX_MS = 2_208_988_800_000


def ntp_ms() -> int:
    """What ``aiortc.clock.current_ms`` answers (milliseconds since 1900:
    the arrival times aiortc's REMB estimator is fed) without building two
    datetimes for every packet."""
    return time.time_ns() // 1_000_000 + _NTP_UNIX_MS


def _drive(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` now, as far as it goes without waiting (handling one
    packet never waits: sending feedback is a plain ``sendto``); if it does
    wait, a task carries it on from there."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    except Exception:  # as aiortc's DTLS task would, say so; the next packet goes on
        log.exception("handling a media packet failed")
        return
    task = asyncio.ensure_future(_carry_on(coro, waiting))
    _carrying.add(task)  # the loop keeps only a weak reference to a task
    task.add_done_callback(_carrying.discard)


async def _carry_on(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    while True:
        if waiting is None:
            await asyncio.sleep(0)
        else:
            await asyncio.wait([waiting])  # its result is taken by ``coro`` itself
        try:
            waiting = coro.send(None)
        except StopIteration:
            return


_IDS = "_HeaderExtensionsMap__ids"


class _TabledExtensionsMap(HeaderExtensionsMap):
    """aiortc's map of a transport's negotiated header extension ids that
    also keeps them as the table :func:`probes.rtp_parse.parse_rtp` reads,
    made again whenever aiortc configures it."""

    table: dict[int, Reader]

    def configure(self, parameters: Any) -> None:
        super().configure(parameters)
        self.table = extension_table(getattr(self, _IDS))


def _tabled_extensions(dtls: Any) -> None:
    """Put a :class:`_TabledExtensionsMap` under ``dtls``, with what was
    negotiated so far (once per transport, when its sockets are hooked)."""
    ext_map = dtls._rtp_header_extensions_map
    if not isinstance(ext_map, _TabledExtensionsMap):
        tabled = _TabledExtensionsMap()
        setattr(tabled, _IDS, getattr(ext_map, _IDS))
        tabled.table = extension_table(getattr(tabled, _IDS))
        dtls._rtp_header_extensions_map = tabled


def _route_rtp(dtls: Any, data: bytes, arrival_ms: int) -> None:
    """What aiortc's ``RTCDtlsTransport._handle_rtp_data`` does with a
    decrypted packet (parse it, route it to its receiver, let that handle
    it), with a leaner parser (:mod:`probes.rtp_parse`) and without a
    coroutine per packet where the receiver is tapped: its handling runs
    here and only feedback to send, if any, is driven on."""
    try:
        packet = parse_rtp(data, dtls._rtp_header_extensions_map.table)
    except ValueError as exc:
        log.debug("RTP parsing failed: %s", exc)
        return
    receiver = dtls._rtp_router.route_rtp(packet)
    if receiver is None:
        return
    on_arrival = getattr(receiver, _ON_ARRIVAL, None)
    if on_arrival is None:
        _drive(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_ms))
        return
    try:
        rest = on_arrival(packet, arrival_ms)
    except Exception:  # as in _drive: say so, and the next packet goes on
        log.exception("handling a media packet failed")
        return
    if rest is not None:
        _drive(rest)


def _hook_protocol(protocol: Any, dtls: Any) -> None:
    _tabled_extensions(dtls)
    original: Callable[[bytes, tuple[Any, ...]], None] = protocol.datagram_received

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        srtp = dtls._rx_srtp
        # ``dtls.state`` would make a string from the enum on every packet.
        if (not data or not 127 < data[0] < 192 or srtp is None
                or dtls._state is not DtlsState.CONNECTED):
            original(data, addr)
            return
        setattr(dtls, _RX_BYTES, getattr(dtls, _RX_BYTES) + len(data))
        setattr(dtls, _RX_PACKETS, getattr(dtls, _RX_PACKETS) + 1)
        try:
            if is_rtcp(data):
                _drive(dtls._handle_rtcp_data(srtp.unprotect_rtcp(data)))
            else:
                _route_rtp(dtls, srtp.unprotect(data), ntp_ms())
        except pylibsrtp.Error as exc:
            log.debug("SRTP unprotect failed: %s", exc)

    protocol.datagram_received = datagram_received
    setattr(protocol, _MEDIA_HOOKED, True)


def handle_media_on_arrival(pc: RTCPeerConnection) -> int:
    """Handle ``pc``'s SRTP in the socket callbacks (see above), on every
    socket its ICE agents have now (call again after an ICE restart).
    Returns how many sockets were newly hooked."""
    hooked = 0
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        connection = ice_connection(transceiver.receiver)
        for protocol in list(connection._protocols):
            if not getattr(protocol, _MEDIA_HOOKED, False):
                _hook_protocol(protocol, dtls)
                hooked += 1
    return hooked


# -- aiortc/aioice: ICE restart ------------------------------------------------


class SwitchableIce:
    """Stands in for the aioice ``Connection`` under one ``RTCIceTransport``
    (and its gatherer), so an ICE restart can put a new connection under the
    same DTLS and SRTP session: aiortc 1.16 has no ICE restart of its own.
    Everything is the current connection's; ``get_event`` carries on over a
    switch instead of reporting the retired connection's end (which aiortc
    would take for the session's end). Datagrams do not pass through it: the
    transport reads and writes the current connection directly, so the
    switch costs nothing per packet."""

    def __init__(self, transport: RTCIceTransport) -> None:
        object.__setattr__(self, "_transport", transport)
        object.__setattr__(self, "_current", transport._connection)

    @property
    def current(self) -> aioice.Connection:
        current: aioice.Connection = object.__getattribute__(self, "_current")
        return current

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.current, name, value)

    async def get_event(self) -> Any:
        while True:
            connection = self.current
            event = await connection.get_event()
            if connection is self.current:
                return event

    async def switch(self, new: aioice.Connection) -> None:
        """From now on ``new`` carries the session; the old one is closed.

        aiortc's DTLS task is waiting on the old connection's receive queue:
        that queue moves to the new connection (with whatever the new path
        brought already), so the wait is answered by the new path, and the
        old connection closes onto an empty queue nobody reads."""
        old = self.current
        waited_on, fresh = old._queue, new._queue
        while not fresh.empty():
            waited_on.put_nowait(fresh.get_nowait())
        new._queue, old._queue = waited_on, fresh
        object.__setattr__(self, "_current", new)
        transport = object.__getattribute__(self, "_transport")
        transport._recv = new.recv
        transport._send = new.send
        await old.close()


def restartable_ice(receiver: RTCRtpReceiver) -> SwitchableIce:
    """Put a :class:`SwitchableIce` under the receiver's ICE transport. Call
    before the local description is made (the gatherer gathers through it):
    when offering, on the first transceiver's receiver; when answering, after
    the remote offer is applied (aiortc has moved every bundled receiver onto
    the bundle's transport by then, so any receiver names it)."""
    return _restartable(receiver.transport.transport)


def restartable_data_ice(pc: RTCPeerConnection) -> SwitchableIce:
    """The same under the ICE transport of ``pc``'s DataChannels (a
    PeerConnection that carries nothing else, as a Janus TextRoom's). Call
    after the remote offer is applied and before the answer is made."""
    if pc.sctp is None:
        raise RuntimeError("no DataChannel transport yet: apply the remote offer first")
    return _restartable(pc.sctp.transport.transport)


def _restartable(transport: RTCIceTransport) -> SwitchableIce:
    if isinstance(transport._connection, SwitchableIce):
        return transport._connection
    switchable = SwitchableIce(transport)
    # Duck-typed: it answers for the connection in everything aiortc calls.
    transport.iceGatherer._connection = switchable  # type: ignore[assignment]
    transport._connection = switchable  # type: ignore[assignment]
    return switchable


def new_ice_connection(config: RTCConfiguration, controlling: bool) -> aioice.Connection:
    """A fresh aioice connection with the ICE servers and policy aiortc would use."""
    kwargs = connection_kwargs(config.iceServers or [])
    policy = ICE_TRANSPORT_POLICIES[config.iceTransportPolicy]
    return aioice.Connection(ice_controlling=controlling, transport_policy=policy, **kwargs)
