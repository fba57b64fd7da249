"""The probe's RTP parser makes of every datagram what aiortc's does."""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket

from probes.rtp_parse import RTP_PACKET_FIELDS, extension_table, parse_rtp

URIS = {
    "mid": "urn:ietf:params:rtp-hdrext:sdes:mid",
    "rtp_stream_id": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "repaired_rtp_stream_id": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "abs_send_time": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "transmission_offset": "urn:ietf:params:rtp-hdrext:toffset",
    "audio_level": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "transport_sequence_number":
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
}


def _negotiated(ids: dict[str, int]) -> tuple[HeaderExtensionsMap, HeaderExtensions]:
    params = RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=i, uri=URIS[name]) for name, i in ids.items()])
    ext_map = HeaderExtensionsMap()
    ext_map.configure(params)
    return ext_map, HeaderExtensions(**ids)


def _fields(packet: RtpPacket) -> dict[str, object]:
    assert set(vars(packet)) == RTP_PACKET_FIELDS
    out = {f: getattr(packet, f) for f in RTP_PACKET_FIELDS - {"extensions"}}
    out["extensions"] = dataclasses.asdict(packet.extensions)
    return out


def _packet(rng: random.Random, ext_map: HeaderExtensionsMap) -> bytes:
    packet = RtpPacket(payload_type=rng.randrange(128), marker=rng.randrange(2),
                       sequence_number=rng.randrange(1 << 16), timestamp=rng.randrange(1 << 32),
                       ssrc=rng.randrange(1 << 32), payload=rng.randbytes(rng.randrange(0, 60)))
    packet.csrc = [rng.randrange(1 << 32) for _ in range(rng.choice((0, 0, 0, 1, 3)))]
    x = packet.extensions
    if rng.random() < 0.8:
        x.abs_send_time = rng.randrange(1 << 24)
        x.transport_sequence_number = rng.randrange(1 << 16)
    if rng.random() < 0.3:
        x.mid = rng.choice(("0", "1", "video"))
    if rng.random() < 0.3:
        x.audio_level = (rng.random() < 0.5, rng.randrange(128))
    if rng.random() < 0.2:
        x.transmission_offset = rng.randrange(-(1 << 23), 1 << 23)
    if rng.random() < 0.2:
        x.rtp_stream_id = "hi"
        x.repaired_rtp_stream_id = "lo"
    data = packet.serialize(ext_map)
    if rng.random() < 0.2:  # padding, as RTX probes carry
        n = rng.randrange(1, 40)
        data = bytes([data[0] | 0x20]) + data[1:] + bytes(n - 1) + bytes([n])
    return data


def _mutated(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    what = rng.randrange(4)
    if what == 0 and b:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif what == 1:
        del b[rng.randrange(len(b) + 1):]
    elif what == 2 and len(b) > 12:
        b[rng.randrange(12, min(len(b), 40))] = rng.randrange(256)  # in the extensions
    else:
        b[0] = rng.randrange(256)
    return bytes(b)


@pytest.mark.parametrize("two_byte", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_same_packets_and_the_same_refusals_as_aiortc(seed: int, two_byte: bool) -> None:
    rng = random.Random(seed)
    ids = dict(zip(URIS, rng.sample(range(1, 15), len(URIS)), strict=True))
    if two_byte:
        ids["transport_sequence_number"] = 200  # needs the two-byte form
    ext_map, id_record = _negotiated(ids)
    table = extension_table(id_record)
    parsed = refused = 0
    for i in range(3000):
        data = _packet(rng, ext_map)
        if i % 2:
            data = _mutated(rng, data)
        try:
            theirs = RtpPacket.parse(data, ext_map)
        except (ValueError, struct.error):
            # Where aiortc lets struct.error out (an extension of the wrong
            # length), the probe refuses the packet as malformed too.
            with pytest.raises(ValueError):
                parse_rtp(data, table)
            refused += 1
            continue
        assert _fields(parse_rtp(data, table)) == _fields(theirs)
        parsed += 1
    assert parsed > 1500 and refused > 100


def test_an_id_negotiated_twice_reads_as_aiortc_reads_it() -> None:
    # aiortc tests the ids in a fixed order: the first field with the id wins.
    ids = HeaderExtensions(mid=3, transport_sequence_number=3)
    data = bytes([0x90, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE, 0, 1, 0x30, 0x41, 0, 0])
    packet = parse_rtp(data, extension_table(ids))
    assert packet.extensions.mid == "A" and packet.extensions.transport_sequence_number is None
