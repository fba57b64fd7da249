"""RTP sequence numbers are 16 bits and wrap; the probe's counters work on
an extended (unwrapped) number, so that order and gaps are plain integer
arithmetic across the wrap."""

from __future__ import annotations

SEQ_SPAN = 1 << 16


def extend_seq(seq: int, highest: int) -> int:
    """The extended number of the 16-bit ``seq``: of the numbers that end in
    ``seq``, the one nearest to ``highest`` (the highest extended number seen
    so far), so a wrap forwards or a late packet from before it both land
    right."""
    cand = (highest & ~0xFFFF) | seq
    if cand - highest > 0x8000:
        cand -= SEQ_SPAN
    elif highest - cand > 0x8000:
        cand += SEQ_SPAN
    return cand
