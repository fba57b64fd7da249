"""RTP packets parsed as aiortc parses them, with less work per packet.

Every datagram of every stream the probe watches is parsed once, on the one
event loop that serves them all. aiortc's ``RtpPacket.parse`` builds a
packet (and a header-extensions record) it then throws away, lists every
header extension and walks a chain of comparisons for each; here the
extension ids the session negotiated are looked up once (:func:`extension_table`)
and each extension goes straight to its reader. The result is aiortc's own
``RtpPacket`` with the same fields (tested against aiortc's parser), so the
rest of aiortc handles it as its own. One difference on purpose: a header
extension of the wrong length (a three-byte abs-send-time that is not three
bytes) is a ``ValueError`` here, the packet refused, where aiortc's parser
lets a ``struct.error`` escape into the socket callback.

Pure.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from aiortc.rtp import HeaderExtensions, RtpPacket

_HEADER = struct.Struct("!BBHLL")
_PROFILE = struct.Struct("!HH")
_ONE_BYTE = 0xBEDE
_TWO_BYTE = 0x1000

Reader = Callable[[HeaderExtensions, bytes], None]

# The fields of aiortc's RtpPacket, all set by :func:`parse_rtp`.
RTP_PACKET_FIELDS = frozenset({"version", "marker", "payload_type", "sequence_number",
                               "timestamp", "ssrc", "csrc", "extensions", "payload",
                               "padding_size"})


def _sized(value: bytes, size: int, name: str) -> bytes:
    if len(value) != size:
        raise ValueError(f"RTP header extension {name} is {len(value)} bytes, not {size}")
    return value


def _mid(x: HeaderExtensions, v: bytes) -> None:
    x.mid = v.decode("utf8")


def _repaired_rtp_stream_id(x: HeaderExtensions, v: bytes) -> None:
    x.repaired_rtp_stream_id = v.decode("ascii")


def _rtp_stream_id(x: HeaderExtensions, v: bytes) -> None:
    x.rtp_stream_id = v.decode("ascii")


def _abs_send_time(x: HeaderExtensions, v: bytes) -> None:
    x.abs_send_time = int.from_bytes(_sized(v, 3, "abs-send-time"), "big")


def _transmission_offset(x: HeaderExtensions, v: bytes) -> None:
    x.transmission_offset = int.from_bytes(_sized(v, 3, "toffset"), "big", signed=True)


def _audio_level(x: HeaderExtensions, v: bytes) -> None:
    level = _sized(v, 1, "ssrc-audio-level")[0]
    x.audio_level = (level & 0x80 == 0x80, level & 0x7F)


def _transport_sequence_number(x: HeaderExtensions, v: bytes) -> None:
    x.transport_sequence_number = int.from_bytes(_sized(v, 2, "transport-wide-cc"), "big")


# In aiortc's order of precedence (its parser tests the ids in this order).
_READERS: tuple[tuple[str, Reader], ...] = (
    ("mid", _mid),
    ("repaired_rtp_stream_id", _repaired_rtp_stream_id),
    ("rtp_stream_id", _rtp_stream_id),
    ("abs_send_time", _abs_send_time),
    ("transmission_offset", _transmission_offset),
    ("audio_level", _audio_level),
    ("transport_sequence_number", _transport_sequence_number),
)


def extension_table(ids: HeaderExtensions) -> dict[int, Reader]:
    """Extension id -> its reader, from the ids a session negotiated (an
    aiortc ``HeaderExtensions`` holding ids, as ``HeaderExtensionsMap``
    keeps them)."""
    table: dict[int, Reader] = {}
    for name, reader in reversed(_READERS):  # earlier ones win a shared id
        x_id = getattr(ids, name)
        if x_id is not None:
            table[x_id] = reader
    return table


def _extensions(data: bytes, pos: int, end: int, profile: int,
                table: dict[int, Reader]) -> HeaderExtensions:
    values = HeaderExtensions()
    if profile == _ONE_BYTE:
        while pos < end:
            b = data[pos]
            if b == 0:  # padding
                pos += 1
                continue
            length = (b & 0x0F) + 1
            pos += 1
            if pos + length > end:
                raise ValueError("RTP one-byte header extension value is truncated")
            reader = table.get(b >> 4)
            if reader is not None:
                reader(values, data[pos:pos + length])
            pos += length
    elif profile == _TWO_BYTE:
        while pos < end:
            if data[pos] == 0:
                pos += 1
                continue
            if pos + 2 > end:
                raise ValueError("RTP two-byte header extension is truncated")
            x_id, length = data[pos], data[pos + 1]
            pos += 2
            if pos + length > end:
                raise ValueError("RTP two-byte header extension value is truncated")
            reader = table.get(x_id)
            if reader is not None:
                reader(values, data[pos:pos + length])
            pos += length
    return values


def parse_rtp(data: bytes, table: dict[int, Reader]) -> RtpPacket:
    """The ``RtpPacket`` aiortc's ``RtpPacket.parse`` makes of ``data``;
    ``ValueError`` for what it refuses."""
    size = len(data)
    if size < 12:
        raise ValueError("RTP packet length is less than 12 bytes")
    first, m_pt, seq, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise ValueError("RTP packet has invalid version")
    cc = first & 0x0F
    pos = 12 + 4 * cc
    if size < pos:
        raise ValueError("RTP packet has truncated CSRC")
    packet = RtpPacket.__new__(RtpPacket)  # every field is set below
    packet.version = 2
    packet.marker = m_pt >> 7
    packet.payload_type = m_pt & 0x7F
    packet.sequence_number = seq
    packet.timestamp = timestamp
    packet.ssrc = ssrc
    packet.csrc = list(struct.unpack_from(f"!{cc}L", data, 12)) if cc else []
    if first & 0x10:
        if size < pos + 4:
            raise ValueError("RTP packet has truncated extension profile / length")
        profile, words = _PROFILE.unpack_from(data, pos)
        pos += 4
        end = pos + 4 * words
        if size < end:
            raise ValueError("RTP packet has truncated extension value")
        packet.extensions = _extensions(data, pos, end, profile, table)
        pos = end
    else:
        packet.extensions = HeaderExtensions()
    if first & 0x20:
        padding = data[-1]
        if not padding or padding > size - pos:
            raise ValueError("RTP packet padding length is invalid")
        packet.padding_size = padding
        packet.payload = data[pos:-padding]
    else:
        packet.padding_size = 0
        packet.payload = data[pos:]
    return packet

