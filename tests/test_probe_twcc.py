"""Transport-wide feedback as a libwebrtc sender reads it: each report parsed
back the way libwebrtc's receiver-side parser does (chunks of either kind,
then one- or two-byte deltas from a 64 ms reference), and the arrivals it
says held against the ones noted. The end-to-end check, a Chromium sender
whose rate follows the probe's reports, is in tests/test_probe_libwebrtc.py."""

from __future__ import annotations

import struct

from probes.twcc import MAX_PER_FEEDBACK, TransportFeedbackLog


def parse(data: bytes) -> dict[str, object]:
    first, pt, length = struct.unpack("!BBH", data[:4])
    assert first >> 6 == 2 and first & 0x1F == 15 and pt == 205
    assert len(data) == (length + 1) * 4
    if first & 0x20:  # padded: the last byte says how much
        data = data[:len(data) - data[-1]]
    sender, media, base, count, ref_fb = struct.unpack("!IIHHI", data[4:20])
    symbols: list[int] = []
    i = 20
    while len(symbols) < count:
        (chunk,) = struct.unpack("!H", data[i:i + 2])
        i += 2
        left = count - len(symbols)
        if chunk >> 15 == 0:  # run length
            symbols += [(chunk >> 13) & 3] * min(chunk & 0x1FFF, left)
        elif (chunk >> 14) & 1 == 0:  # 14 one-bit symbols
            symbols += [(chunk >> (13 - k)) & 1 for k in range(14)][:left]
        else:  # 7 two-bit symbols
            symbols += [(chunk >> (12 - 2 * k)) & 3 for k in range(7)][:left]
    ticks = (ref_fb >> 8) * 256
    arrivals: dict[int, int] = {}
    for n, symbol in enumerate(symbols):
        assert symbol != 3
        if symbol == 1:
            ticks += data[i]
            i += 1
        elif symbol == 2:
            ticks += struct.unpack("!h", data[i:i + 2])[0]
            i += 2
        else:
            continue
        arrivals[(base + n) & 0xFFFF] = ticks * 250
    assert i == len(data), "nothing after the deltas but padding"
    return {"sender": sender, "media": media, "base": base, "count": count,
            "fb": ref_fb & 0xFF, "arrivals": arrivals, "lost": count - len(arrivals)}


def close(got: dict[int, int], sent: dict[int, int]) -> None:
    assert set(got) == set(sent)
    for seq, us in sent.items():
        assert abs(got[seq] - us) <= 125, (seq, got[seq], us)


def test_one_report_says_every_arrival_and_loss() -> None:
    log = TransportFeedbackLog()
    t0 = 5_000_123_456
    sent = {}
    for n in range(40):
        if n in (7, 8, 20):
            continue  # lost
        sent[n + 100] = t0 + n * 3_300 + (n % 3) * 90
        log.arrived(n + 100, sent[n + 100])
    [report] = log.take(sender_ssrc=11, media_ssrc=22)
    got = parse(report)
    assert (got["sender"], got["media"], got["base"], got["count"]) == (11, 22, 100, 40)
    assert got["lost"] == 3 and got["fb"] == 0
    close(got["arrivals"], sent)  # type: ignore[arg-type]
    assert log.take(11, 22) == []  # nothing new, nothing sent
    log.arrived(140, t0 + 200_000)
    [again] = log.take(11, 22)
    assert parse(again)["fb"] == 1 and parse(again)["base"] == 140


def test_large_and_negative_deltas_and_a_late_packet_reported_again() -> None:
    log = TransportFeedbackLog()
    log.arrived(10, 1_000_000)
    log.arrived(12, 1_090_000)  # 90 ms: beyond a one-byte delta
    log.arrived(13, 1_089_000)  # arrived "earlier" than 12: negative
    first = parse(log.take(1, 2)[0])
    close(first["arrivals"], {10: 1_000_000, 12: 1_090_000, 13: 1_089_000})  # type: ignore[arg-type]
    assert first["lost"] == 1
    log.arrived(11, 1_095_000)  # the one reported lost comes late
    log.arrived(14, 1_096_000)
    second = parse(log.take(1, 2)[0])
    assert second["base"] == 11  # reported again, with its neighbours
    assert set(second["arrivals"]) >= {11, 14}  # type: ignore[arg-type]


def test_packets_lost_between_two_reports_are_reported_lost() -> None:
    """The sender counts as lost only what a report says was not received:
    packets lost after the last report's final arrival are the next
    report's first, as libwebrtc's receiver reports them (before, the next
    report started at its first arrival, so the sender never counted them,
    about a tenth of the losses at 15 % loss with a report every 100 ms)."""
    log = TransportFeedbackLog()
    for n in range(10):
        log.arrived(n, 1_000_000 + n * 2_000)
    assert parse(log.take(1, 2)[0])["count"] == 10
    for n in (12, 13, 15):  # 10, 11 and 14 lost
        log.arrived(n, 1_100_000 + n * 2_000)
    got = parse(log.take(1, 2)[0])
    assert got["base"] == 10 and got["count"] == 6 and got["lost"] == 3
    close(got["arrivals"], {n: 1_100_000 + n * 2_000 for n in (12, 13, 15)})  # type: ignore[arg-type]
    assert log.take(1, 2) == []  # nothing new: no report, and nothing reported twice
    log.arrived(17, 1_200_000)
    got = parse(log.take(1, 2)[0])
    assert (got["base"], got["count"], got["lost"]) == (16, 2, 1)


def test_a_report_after_a_long_outage_says_every_number_lost() -> None:
    log = TransportFeedbackLog()
    log.arrived(0, 1_000_000)
    log.take(1, 2)
    log.arrived(30_000, 3_000_000)  # every number between lost
    [report] = log.take(1, 2)
    got = parse(report)
    assert (got["base"], got["count"], got["lost"]) == (1, 30_000, 29_999)
    assert len(report) < 64  # runs of one symbol: a few chunks


def test_sequence_numbers_wrap() -> None:
    log = TransportFeedbackLog()
    sent = {}
    for n, seq in enumerate([65533, 65534, 65535, 0, 1, 2]):
        sent[seq] = 7_000_000 + n * 1000
        log.arrived(seq, sent[seq])
    [report] = log.take(1, 2)
    got = parse(report)
    assert got["base"] == 65533 and got["count"] == 6
    close(got["arrivals"], sent)  # type: ignore[arg-type]


def test_rounding_never_drifts() -> None:
    """Deltas of 0.3 ticks each: rounded one by one they would lose a third
    of a tick per packet; from the running rounded time they never do."""
    log = TransportFeedbackLog()
    sent = {n: 1_000_000 + n * 75 for n in range(200)}
    for seq, us in sent.items():
        log.arrived(seq, us)
    got = parse(log.take(1, 2)[0])
    close(got["arrivals"], sent)  # type: ignore[arg-type]


def test_many_packets_split_into_reports_that_cover_all() -> None:
    log = TransportFeedbackLog()
    sent = {n: 2_000_000 + n * 400 for n in range(MAX_PER_FEEDBACK * 2 + 17)}
    for seq, us in sent.items():
        log.arrived(seq, us)
    reports = [parse(r) for r in log.take(1, 2)]
    assert len(reports) == 3
    assert [r["fb"] for r in reports] == [0, 1, 2]
    merged: dict[int, int] = {}
    for r in reports:
        merged.update(r["arrivals"])  # type: ignore[arg-type]
    close(merged, sent)


def test_a_long_silence_starts_a_new_report() -> None:
    log = TransportFeedbackLog()
    log.arrived(1, 1_000_000)
    log.arrived(2, 1_000_000 + 9_000_000)  # 9 s: beyond a two-byte delta
    reports = [parse(r) for r in log.take(1, 2)]
    assert [r["base"] for r in reports] == [1, 2]
    close(reports[1]["arrivals"], {2: 10_000_000})  # type: ignore[arg-type]


def test_history_is_bounded() -> None:
    log = TransportFeedbackLog()
    for n in range(100_000):
        log.arrived(n & 0xFFFF, n * 1000)
        if n % 1000 == 0:
            log.take(1, 2)
    assert len(log.arrivals) <= 2 * 4096
