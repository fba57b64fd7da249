"""Where chat loss rose, from the probes' own chat samples.

The chat rule (``probe_health.chat_degraded``) and ``scope.py`` decide a
chat incident and its scope from which probes are bad. This adds how much
of the rise in chat loss (messages lost / messages sent) each combination
of the probes' labels (region, ISP, edge node) explains, with the same
ratio localizer as conversion and the players' failure rate.

Each leaf is one combination of labels (the probes that share it summed).
The reference is each probe's own healthy seconds before the incident (media
fine and its chat not degraded), as the media baseline is; the incident's
window counts every second since its start in which the probe's media was
fine (chat suffers with media, and a media fault is another incident).

Pure: counts and seconds in, leaves out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from qosmon.diagnosis.breakdown import RatioLeaves, usual_ratios
from qosmon.diagnosis.probe_health import Labels

LEAF_DIMS = ("region", "isp", "edge_node")
# Seconds of each probe's chat counts kept: the reference before an incident
# plus the seconds between its onset and its opening.
HISTORY_S = 900
# The reference: the probe's healthy seconds in the REFERENCE_S ending GAP_S
# before the incident's start. A stalled message is counted lost only
# seconds after it was sent, so the last seconds before the onset may
# already hold the fault.
REFERENCE_S = 300
GAP_S = 5


@dataclass(frozen=True)
class ChatSecond:
    second: int
    sent: int
    lost: int
    healthy: bool  # media fine and chat not degraded: part of a reference


class ChatHistory:
    """Each probe's chat counts of the seconds the engine judged with its
    media fine, the last ``HISTORY_S`` of them."""

    def __init__(self) -> None:
        self._by_probe: dict[str, deque[ChatSecond]] = {}

    def record(self, probe_id: str, x: ChatSecond) -> None:
        d = self._by_probe.get(probe_id)
        if d is None:
            d = self._by_probe[probe_id] = deque(maxlen=HISTORY_S)
        d.append(x)

    def items(self) -> Iterable[tuple[str, deque[ChatSecond]]]:
        return self._by_probe.items()


def _leaf(labels: Labels) -> tuple[str, ...]:
    return tuple(labels.get(d) for d in LEAF_DIMS)


@dataclass
class ChatLossWindow:
    """One incident's chat counts per leaf: ``[sent, lost]`` in the
    reference and since its start, up to second ``upto``."""

    start: int
    upto: int
    ref: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    now: dict[tuple[str, ...], list[int]] = field(default_factory=dict)

    @classmethod
    def open(
        cls, history: ChatHistory, labels: Mapping[str, Labels], start: int, upto: int
    ) -> ChatLossWindow:
        w = cls(start, upto)
        ref_lo, ref_hi = start - GAP_S - REFERENCE_S, start - GAP_S
        for pid, seconds in history.items():
            lab = labels.get(pid)
            if lab is None:
                continue
            leaf = _leaf(lab)
            for x in seconds:
                if ref_lo <= x.second < ref_hi and x.healthy:
                    w._add(w.ref, leaf, x)
                elif start <= x.second <= upto:
                    w._add(w.now, leaf, x)
        return w

    def add(self, second: int, judged: Iterable[tuple[Labels, ChatSecond]]) -> None:
        """Count one more second (the engine's last evaluated one)."""
        if second <= self.upto:
            return
        for lab, x in judged:
            self._add(self.now, _leaf(lab), x)
        self.upto = second

    @staticmethod
    def _add(into: dict[tuple[str, ...], list[int]], leaf: tuple[str, ...], x: ChatSecond) -> None:
        sums = into.setdefault(leaf, [0, 0])
        sums[0] += x.sent
        sums[1] += x.lost

    def leaves(self) -> RatioLeaves | None:
        """Lost / sent per leaf, now against the reference; None when no
        probe has a reference or nothing was sent since the start."""
        if not any(v[0] for v in self.ref.values()) or not any(v[0] for v in self.now.values()):
            return None
        keys = sorted(set(self.now) | set(self.ref))
        used = [j for j in range(len(LEAF_DIMS)) if any(k[j] for k in keys)]
        dims = tuple(LEAF_DIMS[j] for j in used) or ("region",)
        ref_sent = np.array([float(self.ref.get(k, (0, 0))[0]) for k in keys])
        ref_lost = np.array([float(self.ref.get(k, (0, 0))[1]) for k in keys])
        # Chat loss is usually next to nothing: each leaf at the pooled rate
        # unless its own reference says otherwise (``usual_ratios``), so a
        # stall everywhere is one uniform rise.
        rates = usual_ratios(ref_lost, ref_sent)
        real_a = [float(self.now.get(k, (0, 0))[1]) for k in keys]
        real_b = [float(self.now.get(k, (0, 0))[0]) for k in keys]
        predict_a = (rates * ref_sent).tolist()
        predict_b = ref_sent.tolist()
        leaves = [{LEAF_DIMS[j]: k[j] for j in used} or {"region": ""} for k in keys]
        return RatioLeaves(dims, leaves, real_a, predict_a, real_b, predict_b)
