"""The viewer experience score: one comparable number, 0-100, per show x region.

Built only from what the probes measured, so it means the same thing for every
show whatever its audience or sales. Defined here and nowhere else; the show
report, the live page and history all call :func:`experience_scores`.

How it is made (each part 0..1, 1 = nothing a viewer would notice):

- **availability**: share of probe-seconds in which the stream was connected
  and delivering pictures (no frame for 5 s or more counts as down). A viewer
  who cannot watch gets nothing from the rest, so the score is multiplied by it.
- **smoothness** (weight 0.45): frozen share of the connected time; 10 % frozen
  or more is 0. Frozen time is the picture-stuck time, counted while a stall
  lasts, up to where availability takes over (a second with no frame for
  5 s or more is down, not also frozen); older probes' freezes count when
  they end. Freezes are what makes viewers leave within seconds, so they
  weigh most.
- **network** (0.25): share of connected seconds that break the service level
  (loss above 5 % or RTT of 250 ms or more, the same figures as the report's
  "failed"). Latency and loss hurt interaction even when the picture holds.
- **startup** (0.15): median time to first frame per viewing session, 1 up to
  1 s, 0 at 5 s or more, linear between.
- **chat** (0.15): share of chat messages delivered (the interaction channel).

score = 100 x availability x (weighted mean of the known other parts).
A part with no data (no chat probe, no session started) is left out and the
remaining weights scale up; with no probe-seconds at all the score is unknown
(``None``), never 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qosmon.report.signals import ProbeTable, session_ttffs

# 2: frozen time counted while a stall lasts, and not in seconds already down.
SCORE_VERSION = 2
WEIGHTS = {"smoothness": 0.45, "network": 0.25, "startup": 0.15, "chat": 0.15}
FROZEN_ZERO_SHARE = 0.10  # frozen share of watch time at which smoothness is 0
STARTUP_GOOD_MS = 1000.0
STARTUP_ZERO_MS = 5000.0
NO_FRAME_DOWN_MS = 5000.0
LOSS_BAD_PCT = 5.0
RTT_BAD_MS = 250.0


@dataclass(frozen=True)
class ExperienceScore:
    region: str
    score: float | None  # 0-100, None when nothing was measured
    availability: float | None
    smoothness: float | None
    network: float | None
    startup: float | None
    chat: float | None
    probe_seconds: int

    def parts(self) -> dict[str, float | None]:
        return {
            "availability": self.availability,
            "smoothness": self.smoothness,
            "network": self.network,
            "startup": self.startup,
            "chat": self.chat,
        }


def _clip01(v: float) -> float:
    return float(min(1.0, max(0.0, v)))


def combine(
    availability: float | None, parts: dict[str, float | None]
) -> float | None:
    """The score from its parts (see the module docstring)."""
    if availability is None:
        return None
    known = {k: v for k, v in parts.items() if v is not None and k in WEIGHTS}
    if not known:
        return round(100.0 * availability, 1)
    total_w = sum(WEIGHTS[k] for k in known)
    quality = sum(WEIGHTS[k] * v for k, v in known.items()) / total_w
    return round(100.0 * availability * quality, 1)


def score_rows(table: ProbeTable, rows: np.ndarray, region: str) -> ExperienceScore:
    """Score the samples ``rows`` (a boolean mask or index array over
    ``table``) as one audience."""
    n = int(np.count_nonzero(rows)) if rows.dtype == np.bool_ else len(rows)
    if n == 0:
        return ExperienceScore(region, None, None, None, None, None, None, 0)
    connected = table.connected[rows]
    no_frame = table.no_frame_ms[rows]
    with np.errstate(invalid="ignore"):
        up = connected & ~(no_frame >= NO_FRAME_DOWN_MS)
        availability = float(up.mean())
        n_conn = int(connected.sum())
        smoothness = network = None
        if n_conn:
            frozen_s = float(np.nansum(table.frozen_ms[rows][up])) / 1000.0
            smoothness = _clip01(1.0 - (frozen_s / n_conn) / FROZEN_ZERO_SHARE)
            loss = table.loss_pct[rows][connected]
            rtt = table.rtt_ms[rows][connected]
            bad = (loss > LOSS_BAD_PCT) | (rtt >= RTT_BAD_MS)
            network = _clip01(1.0 - float(bad.mean()))
    sent = int(table.chat_sent[rows].sum())
    lost = int(table.chat_lost[rows].sum())
    chat = _clip01(1.0 - lost / sent) if sent else None
    mask = np.zeros(len(table), np.bool_)
    mask[rows] = True
    ttffs, _ = session_ttffs(table.take(mask))
    startup = None
    if len(ttffs):
        med = float(np.median(ttffs))
        startup = _clip01((STARTUP_ZERO_MS - med) / (STARTUP_ZERO_MS - STARTUP_GOOD_MS))
    parts = {"smoothness": smoothness, "network": network, "startup": startup, "chat": chat}
    return ExperienceScore(
        region=region,
        score=combine(availability, parts),
        availability=round(availability, 4),
        smoothness=None if smoothness is None else round(smoothness, 4),
        network=None if network is None else round(network, 4),
        startup=None if startup is None else round(startup, 4),
        chat=None if chat is None else round(chat, 4),
        probe_seconds=n,
    )


def experience_scores(
    table: ProbeTable, regions: list[str], exclude: np.ndarray | None = None
) -> list[ExperienceScore]:
    """One score per region, in the order given. ``exclude``: samples to
    leave out (probe-local problems, which say nothing about the region)."""
    keep = np.ones(len(table), np.bool_) if exclude is None else ~exclude
    out = []
    for name in regions:
        r = table.regions.index(name) if name in table.regions else -1
        out.append(score_rows(table, keep & (table.region_idx == r), name))
    return out
