"""Path and residual loss per SSRC, with RTX repair, wrap and restarts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from probes.loss import LossAccounting


def test_no_loss() -> None:
    acc = LossAccounting()
    for seq in range(100):
        acc.media(seq, 1000, now_ms=seq)
    li = acc.take(1000)
    assert (li.expected, li.received, li.path_lost, li.residual_lost) == (100, 100, 0, 0)
    assert li.loss_pct == 0.0 and li.payload_bytes == 100_000


def test_loss_repaired_by_rtx_is_path_loss_not_residual() -> None:
    acc = LossAccounting(settle_ms=500)
    for seq in range(100):
        if seq % 10 != 5:
            acc.media(seq, 100, now_ms=seq)
    for seq in range(5, 100, 10):
        if seq != 95:
            acc.rtx(seq, now_ms=120)
    li = acc.take(now_ms=200)  # 95 not settled yet
    assert li.expected == 100 and li.path_lost == 10 and li.loss_pct == 10.0
    assert li.repaired == 9 and li.residual_lost == 0
    li2 = acc.take(now_ms=700)
    assert li2.residual_lost == 1 and li2.expected == 0
    assert acc.totals.residual_lost == 1 and acc.totals.path_lost == 10


def test_late_rtx_after_settle_does_not_unlose() -> None:
    acc = LossAccounting(settle_ms=100)
    acc.media(1, 10, 0)
    acc.media(3, 10, 0)
    assert acc.take(200).residual_lost == 1
    acc.rtx(2, 300)
    assert acc.take(400).repaired == 0


def test_reordered_packet_is_not_lost() -> None:
    acc = LossAccounting()
    for seq in (0, 1, 3, 2, 4):
        acc.media(seq, 10, 0)
    li = acc.take(2000)
    assert li.path_lost == 0 and li.residual_lost == 0 and li.received == 5


def test_duplicates_ignored() -> None:
    acc = LossAccounting()
    for seq in (0, 1, 1, 2, 2, 2):
        acc.media(seq, 10, 0)
    li = acc.take(10)
    assert li.received == 3 and li.expected == 3


def test_sequence_wrap() -> None:
    acc = LossAccounting()
    seqs = [65530 + i for i in range(12)]
    for s in seqs:
        if s != 65537:
            acc.media(s & 0xFFFF, 10, 0)
    li = acc.take(5000)
    assert li.expected == 12 and li.path_lost == 1 and li.residual_lost == 1


def test_intervals_add_up() -> None:
    acc = LossAccounting()
    acc.media(0, 10, 0)
    first = acc.take(1000)
    for seq in range(1, 51):
        if seq != 20:
            acc.media(seq, 10, 1000 + seq)
    second = acc.take(2000)
    assert first.expected == 1 and second.expected == 50 and second.path_lost == 1


def test_sender_restart_is_not_mass_loss() -> None:
    acc = LossAccounting()
    for seq in range(10):
        acc.media(seq, 10, 0)
    for seq in range(30000, 30010):
        acc.media(seq, 10, 1)
    li = acc.take(5000)
    assert li.path_lost == 0


@given(st.lists(st.booleans(), min_size=1, max_size=2000), st.integers(0, 65535))
def test_path_loss_equals_dropped(drops: list[bool], start: int) -> None:
    acc = LossAccounting()
    acc.media(start, 1, 0)  # first packet defines the base
    for i, dropped in enumerate(drops, start=1):
        if not dropped:
            acc.media((start + i) & 0xFFFF, 1, i)
    # the last packet always arrives so trailing drops are known
    acc.media((start + len(drops) + 1) & 0xFFFF, 1, 0)
    li = acc.take(1e9)
    assert li.path_lost == sum(drops) == li.residual_lost
    assert li.expected == len(drops) + 2
