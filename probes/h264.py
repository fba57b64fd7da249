"""What the probe reads from H.264 RTP packets without decoding (RFC 6184).

Packetization mode 0 (one NAL unit per packet) and mode 1 (also STAP-A
aggregates and FU-A fragments) are read; mode 2's interleaved units
(STAP-B, MTAP, FU-B) are not negotiated by the probe and read as unknown.

Per packet: whether it begins an access unit (a frame), whether it carries
an IDR slice, SPS or PPS, and the picture size when it carries an SPS
(ITU-T H.264 section 7.3.2.1.1, with the frame cropping applied).
"""

from __future__ import annotations

from dataclasses import dataclass

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
STAP_A = 24
FU_A = 28

# NAL units that come before the first slice of an access unit (7.4.1.2.3).
_AU_OPENERS = {NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD}
# Profiles whose SPS carries chroma format, bit depths and scaling lists.
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


@dataclass(frozen=True)
class H264PacketInfo:
    frame_start: bool  # begins an access unit: AUD/SEI/SPS/PPS, or a slice with first_mb 0
    idr: bool
    sps: bool
    pps: bool
    width: int | None = None
    height: int | None = None


class _Bits:
    """Big-endian bit reader over an RBSP (emulation prevention removed)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def u(self, n: int) -> int:
        v = 0
        for _ in range(n):
            byte = self._pos >> 3
            if byte >= len(self._data):
                raise ValueError("SPS ends early")
            v = (v << 1) | ((self._data[byte] >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return v

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _rbsp(nal_payload: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 -> 00 00)."""
    return nal_payload.replace(b"\x00\x00\x03", b"\x00\x00")


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + bits.se() + 256) % 256
        last = last if nxt == 0 else nxt


def parse_sps(nal: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from an SPS NAL unit (header byte included),
    or None if it cannot be read."""
    if len(nal) < 4 or nal[0] & 0x1F != NAL_SPS:
        return None
    bits = _Bits(_rbsp(nal[1:]))
    try:
        profile_idc = bits.u(8)
        bits.u(16)  # constraint flags, level_idc
        bits.ue()  # seq_parameter_set_id
        chroma_format_idc = 1
        separate_colour_plane = 0
        if profile_idc in _HIGH_PROFILES:
            chroma_format_idc = bits.ue()
            if chroma_format_idc == 3:
                separate_colour_plane = bits.u(1)
            bits.ue()  # bit_depth_luma_minus8
            bits.ue()  # bit_depth_chroma_minus8
            bits.u(1)  # qpprime_y_zero_transform_bypass_flag
            if bits.u(1):  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma_format_idc != 3 else 12):
                    if bits.u(1):
                        _skip_scaling_list(bits, 16 if i < 6 else 64)
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
        elif poc_type == 1:
            bits.u(1)  # delta_pic_order_always_zero_flag
            bits.se()  # offset_for_non_ref_pic
            bits.se()  # offset_for_top_to_bottom_field
            for _ in range(bits.ue()):  # num_ref_frames_in_pic_order_cnt_cycle
                bits.se()
        bits.ue()  # max_num_ref_frames
        bits.u(1)  # gaps_in_frame_num_value_allowed_flag
        width_mbs = bits.ue() + 1
        height_map_units = bits.ue() + 1
        frame_mbs_only = bits.u(1)
        if not frame_mbs_only:
            bits.u(1)  # mb_adaptive_frame_field_flag
        bits.u(1)  # direct_8x8_inference_flag
        crop = (0, 0, 0, 0)
        if bits.u(1):  # frame_cropping_flag
            crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue())
    except ValueError:
        return None
    # Crop units (7.4.2.1.1, table 6-1).
    if chroma_format_idc == 0 or separate_colour_plane:
        unit_x, unit_y = 1, 2 - frame_mbs_only
    else:
        sub_w = 1 if chroma_format_idc == 3 else 2
        sub_h = 2 if chroma_format_idc == 1 else 1
        unit_x, unit_y = sub_w, sub_h * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_map_units * 16 - unit_y * (crop[2] + crop[3])
    if width <= 0 or height <= 0:
        return None
    return width, height


def _opens_access_unit(nal_type: int, after_header: bytes) -> bool:
    if nal_type in _AU_OPENERS:
        return True
    if nal_type in (NAL_SLICE, NAL_IDR):
        # first_mb_in_slice is the first ue(v) field: ue(v) == 0 is the bit '1'.
        return bool(after_header) and bool(after_header[0] & 0x80)
    return False


def _nal_units(payload: bytes) -> list[bytes] | None:
    """The whole NAL units in a single-NAL or STAP-A payload."""
    nal_type = payload[0] & 0x1F
    if 1 <= nal_type <= 23:
        return [payload]
    if nal_type != STAP_A:
        return None
    units = []
    pos = 1
    while pos + 2 <= len(payload):
        size = (payload[pos] << 8) | payload[pos + 1]
        pos += 2
        if size == 0 or pos + size > len(payload):
            return None
        units.append(payload[pos : pos + size])
        pos += size
    return units or None


# The answers without a picture size, made once: parsing runs for every
# packet and a frozen dataclass is slow to build.
_INFO = {(start, idr, sps, pps): H264PacketInfo(start, idr, sps, pps)
         for start in (False, True) for idr in (False, True)
         for sps in (False, True) for pps in (False, True)}


def parse_h264_packet(payload: bytes) -> H264PacketInfo | None:
    """One RTP payload; None if it is not an H.264 mode 0/1 payload."""
    if len(payload) < 2 or payload[0] & 0x80:  # forbidden_zero_bit
        return None
    nal_type = payload[0] & 0x1F
    if nal_type == FU_A:
        fu = payload[1]
        inner = fu & 0x1F
        start = bool(fu & 0x80) and _opens_access_unit(inner, payload[2:3])
        return _INFO[start, inner == NAL_IDR, False, False]
    units = _nal_units(payload)
    if units is None:
        return None
    first = units[0][0] & 0x1F
    types = {u[0] & 0x1F for u in units}
    start = _opens_access_unit(first, units[0][1:2])
    idr, sps, pps = NAL_IDR in types, NAL_SPS in types, NAL_PPS in types
    size: tuple[int, int] | None = None
    if sps:
        for u in units:
            if u[0] & 0x1F == NAL_SPS:
                size = parse_sps(u)
    if size is None:
        return _INFO[start, idr, sps, pps]
    return H264PacketInfo(start, idr, sps, pps, width=size[0], height=size[1])
