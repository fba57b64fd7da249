"""What each probe says, second by second: its recent window, its own healthy
baseline, and which media or chat fault (if any) it shows.

A probe's verdict for second ``s`` uses the medians of its samples in the
window ending at ``s``, so a single bad second does not count; it must then
persist (``Persistence``) before the probe counts as bad. The per-probe media
rule reads what the signals say together:

- media stopped (connection down, no frame for ``no_frame_s``, or fps and
  bitrate both ~0 while connected)            -> node_failure
- RTT up (SLO or queueing rise over baseline) with bitrate or fps down
                                                -> bandwidth
- what the link carries (retransmissions included) well below its baseline,
  loss within the SLO, few retransmissions: the sender lowered its rate to
  a squeeze                                    -> bandwidth
- RTT at or above the SLO, bitrate holding     -> high_latency
- loss above the SLO with RTT normal (and, where known, the received rate
  holding: the sender repairs, the link is not thin) -> packet_loss
- no audio packet for most of the window while video flows on a clean path
                                                -> audio_stalled

Seconds in which the probe itself was starved (:func:`starved`: the kernel
dropped datagrams at its sockets, or its event loop ran late) say nothing of
the path: they are left out of the window, and a window with only such
seconds is no data (unknown), as if the probe had been silent.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, deque
from dataclasses import dataclass

from qosmon.detection.persistence import Persistence
from qosmon.diagnosis.config import DiagnosisConfig, MediaThresholds
from qosmon.model import Cause, ConnectionState, ProbeSample

# States in which the viewer certainly gets no media. CLOSED is a viewer that
# left on purpose (end of show), NEW/CONNECTING is not yet known.
_DOWN_STATES = frozenset(
    {ConnectionState.DISCONNECTED, ConnectionState.FAILED, ConnectionState.JOIN_FAILED}
)
_UNKNOWN_STATES = frozenset(
    {ConnectionState.NEW, ConnectionState.CONNECTING, ConnectionState.CLOSED}
)

# When the classes a probe showed are tied, the more specific explanation wins.
CAUSE_PRIORITY = (
    Cause.NODE_FAILURE, Cause.BANDWIDTH, Cause.HIGH_LATENCY, Cause.PACKET_LOSS,
    Cause.AUDIO_STALLED,
)

# A probe silent this long is unknown: it neither keeps an incident open nor
# counts as healthy.
_SILENT_S = 10


def second_of(ts: float) -> int:
    return math.floor(ts)


def starved(x: ProbeSample, m: MediaThresholds) -> bool:
    """The probe could not keep up in this second: what it reports of loss,
    stalls and RTT is (at least partly) its own doing. Older probes report
    neither figure (None): their seconds count as before."""
    return bool(x.socket_drops) or (x.probe_lag_ms is not None
                                    and x.probe_lag_ms >= m.probe_lag_ms)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class Labels:
    probe_id: str
    region: str
    isp: str
    edge_node: str

    def get(self, dim: str) -> str:
        return str(getattr(self, dim))


@dataclass(frozen=True)
class MediaView:
    """A probe's window ending at ``second``: medians, latest state, chat sums."""

    second: int
    state: ConnectionState
    no_frame_ms: float | None
    fps: float | None
    bitrate_kbps: float | None
    rtt_ms: float | None
    loss_pct: float | None
    ttff_ms: float | None
    chat_sent: int
    chat_lost: int
    chat_rtt_ms: float | None
    # Probes that report them (None otherwise): medians of the received rate
    # (retransmissions included) and its retransmitted part; picture-stuck
    # and audio-stalled time summed over the window; audio path loss.
    received_kbps: float | None = None
    rtx_kbps: float | None = None
    stuck_ms: float | None = None
    audio_stalled_ms: float | None = None
    audio_loss_pct: float | None = None
    # A session started, or media stopped, within ``ramp_s``: the sender may
    # still be ramping its rate up.
    settling: bool = False

    @property
    def rtx_share(self) -> float | None:
        """Retransmissions' share of what was received, 0-1."""
        if self.rtx_kbps is None or not self.received_kbps:
            return None
        return min(1.0, self.rtx_kbps / self.received_kbps)


@dataclass(frozen=True)
class Baseline:
    bitrate_kbps: float | None
    fps: float | None
    rtt_ms: float | None
    received_kbps: float | None = None


@dataclass(frozen=True)
class ProbeStatus:
    labels: Labels
    view: MediaView | None  # None: no data for this second (unknown)
    baseline: Baseline
    media_known: bool
    stream_cause: Cause | None  # set while the probe is bad (after persistence)
    raw_cause: Cause | None  # what this very window shows, before persistence
    stream_since: float | None
    chat_known: bool
    chat_bad: bool  # chat degraded while media is fine
    chat_raw: bool  # this very window shows chat degraded
    chat_since: float | None


def classify_media(view: MediaView, base: Baseline, cfg: DiagnosisConfig) -> Cause | None:
    """The media fault one window shows, or None when it looks healthy."""
    m = cfg.media
    if view.state in _DOWN_STATES:
        return Cause.NODE_FAILURE
    # No frame for seconds is a node failure only when the packets stopped
    # too. A stream squeezed below its bitrate still delivers packets (a
    # third of them, say) but hardly ever a whole frame: that is the path,
    # judged below, not the node.
    flowing = view.bitrate_kbps is not None and view.bitrate_kbps > m.stopped_bitrate_kbps
    starved = view.no_frame_ms is not None and view.no_frame_ms >= m.no_frame_s * 1000
    if starved and not flowing:
        return Cause.NODE_FAILURE
    if (
        view.state == ConnectionState.CONNECTED
        and view.fps is not None
        and view.bitrate_kbps is not None
        and view.fps <= m.stopped_fps
        and view.bitrate_kbps <= m.stopped_bitrate_kbps
    ):
        return Cause.NODE_FAILURE
    bitrate_low = _below(
        view.bitrate_kbps, base.bitrate_kbps, m.bitrate_drop_ratio, m.min_bitrate_kbps
    )
    fps_low = _below(view.fps, base.fps, m.fps_drop_ratio, m.min_fps)
    rtt = view.rtt_ms
    rtt_slo = rtt is not None and rtt >= m.rtt_ms
    rtt_up = rtt_slo or (
        rtt is not None and base.rtt_ms is not None and rtt >= base.rtt_ms + m.rtt_rise_ms
    )
    if rtt_up and (bitrate_low or fps_low):
        return Cause.BANDWIDTH
    lossy = view.loss_pct is not None and view.loss_pct > m.loss_pct
    # What the link carried, retransmissions included, against its own
    # healthy level (None: the probe does not report it, or no baseline).
    thin: bool | None = None
    if view.received_kbps is not None and base.received_kbps:
        thin = view.received_kbps < m.received_drop_ratio * base.received_kbps
    # A sender with congestion control (libwebrtc) meets a squeeze by
    # lowering its rate: no loss, no queue, few repairs, only less arriving.
    share = view.rtx_share
    if (thin and not lossy and share is not None and share <= m.rtx_share_max
            and not view.settling):
        return Cause.BANDWIDTH
    # A full bottleneck queue drops the RTT checks too: no answer at all,
    # heavy loss and a fraction of the bitrate is a squeeze, not random loss
    # (which leaves the bitrate roughly whole and some checks answered).
    # Where the received rate is known it decides: a lossy path whose
    # sender repairs keeps the link as full as before.
    if rtt is None and lossy and bitrate_low and (fps_low or starved) and thin is not False:
        return Cause.BANDWIDTH
    if rtt_slo:
        return Cause.HIGH_LATENCY
    if lossy:
        return Cause.PACKET_LOSS
    if view.audio_stalled_ms is not None and view.audio_stalled_ms >= m.audio_stalled_ms:
        # Audio loss on the path shows once its packets come back; audio
        # stopping with the path clean is the audio itself.
        audio_lossy = view.audio_loss_pct is not None and view.audio_loss_pct > m.loss_pct
        return Cause.PACKET_LOSS if audio_lossy else Cause.AUDIO_STALLED
    if starved:
        return Cause.NODE_FAILURE  # packets arrive but nothing decodable: the source
    return None


def _below(value: float | None, base: float | None, ratio: float, floor: float) -> bool:
    if value is None:
        return False
    if base is not None:
        return value < ratio * base
    return value < floor


def chat_degraded(view: MediaView, cfg: DiagnosisConfig) -> bool | None:
    c = cfg.chat
    if view.chat_sent == 0 and view.chat_lost == 0:
        return None
    if view.chat_lost >= c.min_lost and view.chat_lost >= c.lost_ratio * max(view.chat_sent, 1):
        return True
    return view.chat_rtt_ms is not None and view.chat_rtt_ms >= c.rtt_ms


class ProbeTracker:
    def __init__(self, labels: Labels, cfg: DiagnosisConfig) -> None:
        self.labels = labels
        self.cfg = cfg
        t = cfg.incident
        self._samples: dict[int, ProbeSample] = {}
        self._stream = Persistence(t.probe_min_bad_s, t.probe_clear_s)
        self._chat = Persistence(t.probe_min_bad_s, t.probe_clear_s)
        self._classes: deque[Cause] = deque(maxlen=10)
        n = cfg.media.baseline_s
        self._base_bitrate: deque[float] = deque(maxlen=n)
        self._base_fps: deque[float] = deque(maxlen=n)
        self._base_rtt: deque[float] = deque(maxlen=n)
        self._base_received: deque[float] = deque(maxlen=n)
        self._last_data: int | None = None
        self._keep_s = max(cfg.media.window_s, cfg.media.rtt_window_s, cfg.chat.window_s,
                           cfg.media.ramp_s) + 30

    def add(self, sample: ProbeSample) -> None:
        s = second_of(sample.ts)
        prev = self._samples.get(s)
        # Two samples in one second (clock step, retry): keep the later one.
        if prev is None or sample.ts >= prev.ts:
            self._samples[s] = sample

    def baseline(self) -> Baseline:
        need = self.cfg.media.baseline_min_s

        def med(d: deque[float]) -> float | None:
            return statistics.median(d) if len(d) >= need else None

        return Baseline(med(self._base_bitrate), med(self._base_fps), med(self._base_rtt),
                        med(self._base_received))

    def _trusted(self, second: int) -> ProbeSample | None:
        """The sample of ``second`` unless the probe was starved in it."""
        x = self._samples.get(second)
        return None if x is None or starved(x, self.cfg.media) else x

    def view(self, second: int) -> MediaView | None:
        m, c = self.cfg.media, self.cfg.chat
        win = [
            x
            for s in range(second - m.window_s + 1, second + 1)
            if (x := self._trusted(s)) is not None
        ]
        if not win:
            return None
        rtt_win = [
            x.rtt_ms
            for s in range(second - m.rtt_window_s + 1, second + 1)
            if (x := self._trusted(s)) is not None and x.rtt_ms is not None
        ]
        chat_win = [
            x
            for s in range(second - c.window_s + 1, second + 1)
            if (x := self._trusted(s)) is not None
        ]
        last = win[-1]
        settling = any(
            x.state != ConnectionState.CONNECTED
            or x.ttff_ms != last.ttff_ms
            or (x.bitrate_kbps is not None and x.bitrate_kbps <= m.stopped_bitrate_kbps)
            for s in range(second - m.ramp_s + 1, second + 1)
            if (x := self._samples.get(s)) is not None
        )
        received = [x.received_kbps for x in win if x.received_kbps is not None]
        stalls = [x.audio_stalled_ms for x in win if x.audio_stalled_ms is not None]
        audio_loss = [x.audio_loss_pct for x in win if x.audio_loss_pct is not None]
        chat_rtts = [x.chat_rtt_ms for x in chat_win if x.chat_rtt_ms is not None]
        ttffs = [x.ttff_ms for x in win if x.ttff_ms is not None]
        return MediaView(
            second=second,
            state=last.state,
            # The longest gap seen in the window: a freeze stays visible while
            # the window slides over it (the probe reports time since last frame).
            no_frame_ms=max(
                (x.no_frame_ms for x in win if x.no_frame_ms is not None), default=None
            ),
            fps=_median([x.fps for x in win if x.fps is not None]),
            bitrate_kbps=_median([x.bitrate_kbps for x in win if x.bitrate_kbps is not None]),
            rtt_ms=_median(rtt_win),
            loss_pct=_median([x.loss_pct for x in win if x.loss_pct is not None]),
            ttff_ms=ttffs[-1] if ttffs else None,
            chat_sent=sum(x.chat_sent for x in chat_win),
            chat_lost=sum(x.chat_lost for x in chat_win),
            chat_rtt_ms=_median(chat_rtts),
            received_kbps=_median(received),
            rtx_kbps=_median([x.rtx_kbps for x in win if x.rtx_kbps is not None])
            if received else None,
            stuck_ms=sum(x.stuck_ms for x in win),
            audio_stalled_ms=sum(stalls) if stalls else None,
            audio_loss_pct=_median(audio_loss),
            settling=settling,
        )

    def evaluate(self, second: int) -> ProbeStatus:
        view = self.view(second)
        base = self.baseline()
        if view is not None:
            self._last_data = second
        media_known = view is not None and not (
            view.state in _UNKNOWN_STATES
            and (view.no_frame_ms is None or view.no_frame_ms < self.cfg.media.no_frame_s * 1000)
        )
        raw: Cause | None = None
        if view is not None and media_known:
            raw = classify_media(view, base, self.cfg)
            self._stream.update(raw is not None, second)
            if raw is not None:
                self._classes.append(raw)
            elif not self._stream.active:
                self._learn(second)
        elif self._last_data is None or second - self._last_data > _SILENT_S:
            self._reset()
        # No data for this window: unknown, neither bad nor fine.
        stream_cause = self._current_class() if self._stream.active and view is not None else None
        if not self._stream.active and raw is None:
            self._classes.clear()
        chat_known = False
        chat_raw = False
        if view is not None and media_known and stream_cause is None and raw is None:
            bad = chat_degraded(view, self.cfg)
            chat_known = bad is not None
            chat_raw = bool(bad)
            self._chat.update(bad, second)
        elif stream_cause is not None or raw is not None:
            # Chat suffers with media; only chat failing on its own is a chat fault.
            self._chat.update(False, second)
        return ProbeStatus(
            labels=self.labels,
            view=view,
            baseline=base,
            media_known=media_known or stream_cause is not None,
            stream_cause=stream_cause,
            raw_cause=raw,
            stream_since=self._stream.since,
            chat_known=chat_known or self._chat.active,
            chat_bad=self._chat.active and stream_cause is None and view is not None,
            chat_raw=chat_raw,
            chat_since=self._chat.since,
        )

    def _current_class(self) -> Cause:
        counts = Counter(self._classes)
        if not counts:
            return Cause.NODE_FAILURE
        best = max(counts.values())
        return next(c for c in CAUSE_PRIORITY if counts.get(c, 0) == best)

    def _learn(self, second: int) -> None:
        x = self._trusted(second)
        if x is None or x.state != ConnectionState.CONNECTED:
            return
        if x.bitrate_kbps is not None:
            self._base_bitrate.append(x.bitrate_kbps)
        if x.fps is not None:
            self._base_fps.append(x.fps)
        if x.rtt_ms is not None:
            self._base_rtt.append(x.rtt_ms)
        if x.received_kbps is not None:
            self._base_received.append(x.received_kbps)

    def _reset(self) -> None:
        t = self.cfg.incident
        self._stream = Persistence(t.probe_min_bad_s, t.probe_clear_s)
        self._chat = Persistence(t.probe_min_bad_s, t.probe_clear_s)
        self._classes.clear()

    def prune(self, before_second: int) -> None:
        cutoff = before_second - self._keep_s
        for s in [s for s in self._samples if s < cutoff]:
            del self._samples[s]
