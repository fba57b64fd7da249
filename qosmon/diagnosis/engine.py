"""The diagnosis engine: samples in, incidents out, one second at a time.

Pure: no I/O, no clock. ``step(now)`` evaluates every whole second up to
``now - lag_s`` (samples may arrive a second or two late and out of order
across probes; the lag lets them in before their second is judged). Each
second it

1. asks every probe tracker for its verdict (``probe_health.py``),
2. localizes the bad probes to the narrowest scope (``scope.py``) and names
   the cause of each group from what its probes show together,
3. applies the stock rules to the latest stock states (``stock.py``),
4. checks each region's commerce series against its own baseline
   (``business.py``) and, if they moved while stream and stock are fine,
   calls it ``network_fine``,
5. opens an incident when a finding has held long enough, keeps it while it
   holds, and closes it after ``clear_s`` without it (hysteresis).

See ``docs/diagnosis.md`` for every rule, its evidence and its thresholds.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from qosmon.diagnosis.breakdown import (
    RatioLeaves,
    ViewerMeasure,
    conversion_leaves,
    where_ratio_moved,
)
from qosmon.diagnosis.business import BusinessStatus, RegionBusiness, ViewerCourse
from qosmon.diagnosis.chat_loss import ChatHistory, ChatLossWindow, ChatSecond
from qosmon.diagnosis.config import DiagnosisConfig
from qosmon.diagnosis.evidence import (
    business_evidence,
    business_strength,
    chat_evidence,
    chat_loss_evidence,
    chat_strength,
    conversion_evidence,
    media_evidence,
    media_strength,
    stock_evidence,
    viewer_evidence,
)
from qosmon.diagnosis.probe_health import (
    CAUSE_PRIORITY,
    Labels,
    ProbeStatus,
    ProbeTracker,
    second_of,
)
from qosmon.diagnosis.scope import ProbeGroup, localize_probes
from qosmon.diagnosis.stock import StockFinding, deciding_states, stock_findings
from qosmon.diagnosis.viewer_slices import ViewerSlices
from qosmon.model import (
    BusinessSample,
    Cause,
    Evidence,
    Incident,
    Metric,
    ProbeSample,
    Severity,
    Show,
    StockState,
    ViewerAggregate,
)

# A probe silent this long no longer holds judging back (probe_health.py counts it
# unknown after as long).
_HOLD_BACK_S = 10

# Families of incidents: a finding of one family never extends an incident of
# another. Stream and single-probe findings share absorption (a region
# incident that is recovering one probe at a time stays one incident).
_STREAM, _PROBE, _CHAT, _STOCK, _STALE, _BUSINESS = (
    "stream",
    "probe",
    "chat",
    "stock",
    "stale",
    "business",
)
# After an incident ends its viewers take this long to come back: those
# seconds are not the expected course for the next incident's impact.
_AFTERMATH_S = 45
_EXPLAINING = frozenset({_STREAM, _CHAT, _STOCK, _STALE})
# How far before an incident the platform's viewer-side aggregates are its
# reference, and how many of them a step files in the engine's columns
# (a few hundredths of a second: a batch of 120,000 is in after five steps).
_VIEWER_REFERENCE_S = 600.0
_VIEWER_ROWS_PER_STEP = 25_000


@dataclass
class _Finding:
    """What one second shows for one incident key."""

    family: str
    key: tuple[str, ...]
    scope: dict[str, str]
    cause: Cause
    start_ts: float
    probes: frozenset[str] = frozenset()
    common: dict[str, str] = field(default_factory=dict)
    skus: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    evidence: list[Evidence] = field(default_factory=list)
    summary: str = ""
    # False while the fault is fading (members inside their clear time): the
    # evidence of that second would show recovered values, so it is not kept.
    live: bool = True
    # How clearly this second shows the cause: an incident shows the evidence
    # of its clearest second, not of whichever came last (a fault fading out
    # would otherwise be "proved" by nearly recovered values).
    strength: float = 0.0


@dataclass
class _Pending:
    first: int
    last: int
    count: int


@dataclass
class _Tracked:
    family: str
    key: tuple[str, ...]
    incident_id: str
    start_ts: float
    detected_ts: float
    scope: dict[str, str]
    probes: set[str]
    cause: Cause
    common: dict[str, str] = field(default_factory=dict)
    skus: list[str] = field(default_factory=list)
    regions: tuple[str, ...] = ()
    votes: Counter[Cause] = field(default_factory=Counter)
    # Per cause: the clearest second's strength, evidence and summary.
    shown: dict[Cause, tuple[float, list[Evidence], str]] = field(default_factory=dict)
    last_seen: int = 0
    end_ts: float | None = None
    viewers_expected: list[ViewerCourse] | None = None
    viewers_lost: float | None = None
    emitted: tuple[object, ...] | None = None
    # Chat incidents: the probes' chat counts since the start and before it,
    # and where chat loss rose (computed again only when a second was added).
    chat_window: ChatLossWindow | None = None
    chat_where: tuple[int, list[Evidence]] | None = None
    # Stream and business incidents, per measure of the players' reports:
    # where it rose, what that was computed from (the reports' version while
    # open, the end once closed) and at which step.
    viewer_ev: dict[ViewerMeasure, list[Evidence]] = field(default_factory=dict)
    viewer_key: dict[ViewerMeasure, tuple[object, ...]] = field(default_factory=dict)
    viewer_step: dict[ViewerMeasure, int] = field(default_factory=dict)


class DiagnosisEngine:
    def __init__(self, show: Show, config: DiagnosisConfig | None = None) -> None:
        self.show = show
        self.cfg = config or DiagnosisConfig()
        self._probes: dict[str, ProbeTracker] = {}
        self._labels: dict[str, Labels] = {}
        self._business: dict[str, RegionBusiness] = {}
        self._stock: dict[tuple[str, str], StockState] = {}
        self._last_second: int | None = None
        self._first_data: int | None = None
        self._newest: dict[str, int] = {}  # probe id -> the newest second it sent
        self._pending: dict[tuple[str, ...], _Pending] = {}
        self._open: dict[tuple[str, ...], _Tracked] = {}
        self._all: list[_Tracked] = []
        self._viewers = ViewerSlices()
        self._steps = 0
        # Each probe's chat counts per second until its second is judged, then
        # kept (media-fine seconds only) for where chat loss rose.
        self._chat_in: dict[str, dict[int, tuple[float, int, int]]] = {}
        self._chat_judged: int | None = None  # the last second judged
        self._chat_history = ChatHistory()

    # --- input -------------------------------------------------------------
    def add_probe_samples(self, samples: Iterable[ProbeSample]) -> None:
        for x in samples:
            if x.show_id != self.show.show_id:
                continue
            tr = self._probes.get(x.probe_id)
            if tr is None:
                labels = Labels(x.probe_id, x.region, x.isp, x.edge_node)
                self._labels[x.probe_id] = labels
                tr = self._probes[x.probe_id] = ProbeTracker(labels, self.cfg)
            tr.add(x)
            self._note_data(x.ts)
            s = second_of(x.ts)
            if s > self._newest.get(x.probe_id, s - 1):
                self._newest[x.probe_id] = s
            if self._last_second is None or s > self._last_second:
                pending = self._chat_in.setdefault(x.probe_id, {})
                prev = pending.get(s)
                # Two samples in one second: the later one, as the tracker does.
                if prev is None or x.ts >= prev[0]:
                    pending[s] = (x.ts, x.chat_sent, x.chat_lost)

    def add_business(self, samples: Iterable[BusinessSample]) -> None:
        for x in samples:
            if x.show_id != self.show.show_id:
                continue
            rb = self._business.get(x.region)
            if rb is None:
                rb = self._business[x.region] = RegionBusiness(x.region, self.cfg)
            rb.add(x)
            self._note_data(x.ts)

    def add_viewer_aggregates(self, samples: Iterable[ViewerAggregate]) -> None:
        """The platform's players' own reports, per audience slice. Only
        taken here: ``step`` files them, a bounded number at a time, and
        computes where they moved (``_refresh_viewer_evidence``)."""
        self._viewers.add(x for x in samples if x.show_id == self.show.show_id)

    def add_stock_states(self, states: Iterable[StockState]) -> None:
        for x in states:
            if x.show_id != self.show.show_id:
                continue
            k = (x.sku, x.warehouse)
            prev = self._stock.get(k)
            if prev is None or x.ts >= prev.ts:
                self._stock[k] = x

    def _note_data(self, ts: float) -> None:
        s = second_of(ts)
        if self._first_data is None or s < self._first_data:
            self._first_data = s

    def resume_at(self, ts: float) -> None:
        """Data stopped for a reason outside the show (the collector was down)
        and resumes at ``ts``: the seconds before it not yet evaluated are
        skipped rather than judged empty, since missing data is not "fine"
        and must not close what was open."""
        s = math.floor(ts) - 1
        if self._last_second is None or s > self._last_second:
            self._last_second = s

    # --- output ------------------------------------------------------------
    @property
    def incidents(self) -> list[Incident]:
        return [self._snapshot(t) for t in self._all]

    def _judgeable(self, now: float) -> int:
        """The last second to judge at ``now``: ``lag_s`` behind, or sooner
        once every probe still reporting has sent that second or a later one
        (its samples are all in; waiting longer would only delay the page).
        Never the second still running; a probe silent for ``_HOLD_BACK_S``
        no longer holds judging back (it is unknown by then anyway)."""
        target = math.floor(now - self.cfg.incident.lag_s)
        running = math.floor(now)
        live = [s for s in self._newest.values() if s >= running - _HOLD_BACK_S]
        if live:
            target = max(target, min(min(live), running - 1))
        return target

    def step(self, now: float) -> list[Incident]:
        """Evaluate up to ``now - lag_s`` (sooner when every reporting probe's
        samples are in); return incidents opened, changed or closed."""
        target = self._judgeable(now)
        if self._last_second is None:
            if self._first_data is None:
                return []
            self._last_second = min(self._first_data, target) - 1
        start = max(self._last_second + 1, target - self.cfg.incident.max_catch_up_s + 1)
        if self._chat_judged is None or start > self._chat_judged + 1:
            # Seconds skipped (a catch-up bound, a resume): never judged.
            for pending in self._chat_in.values():
                for k in [k for k in pending if k < start]:
                    del pending[k]
        for s in range(start, target + 1):
            self._evaluate(s, now)
        self._last_second = max(self._last_second, target)
        self._steps += 1
        # A step files reports or localizes them, never both: either is
        # bounded, and the step runs on the collector's event loop.
        if not self._viewers.absorb(_VIEWER_ROWS_PER_STEP):
            self._refresh_viewer_evidence()
        out = []
        for t in self._all:
            if t.emitted is not None and t.end_ts is not None and t.emitted[3] is not None:
                continue  # closed and already reported closed
            snap = self._snapshot(t)
            sig = (
                snap.cause,
                snap.severity,
                tuple(sorted(snap.scope.items())),
                snap.end_ts,
                tuple(snap.probes),
                tuple(snap.skus),
            )
            if sig != t.emitted:
                t.emitted = sig
                out.append(snap)
        return out

    # --- one second ----------------------------------------------------------
    def _evaluate(self, s: int, now: float) -> None:
        statuses = {pid: tr.evaluate(s) for pid, tr in self._probes.items()}
        findings: list[_Finding] = []
        findings += self._stream_findings(statuses)
        findings += self._chat_findings(statuses)
        findings += self._stock_findings(s)
        business = {r: rb.evaluate(s) for r, rb in self._business.items()}
        findings += self._business_findings(s, business, statuses)
        judged = self._judge_chat(s, statuses)
        self._apply(s, now, findings)
        for inc in self._open.values():
            if inc.chat_window is not None:
                inc.chat_window.add(s, judged)
        for tr in self._probes.values():
            tr.prune(s)

    def _judge_chat(
        self, s: int, statuses: dict[str, ProbeStatus]
    ) -> list[tuple[Labels, ChatSecond]]:
        """Second ``s``'s chat counts of the probes whose media was fine
        then, kept in their history (healthy when their chat was fine too)."""
        out = []
        self._chat_judged = s
        for pid, st in statuses.items():
            got = self._chat_in.get(pid, {}).pop(s, None)
            media_ok = st.view is not None and st.stream_cause is None and st.raw_cause is None
            if got is None or not media_ok:
                continue
            x = ChatSecond(s, got[1], got[2], healthy=not (st.chat_raw or st.chat_bad))
            self._chat_history.record(pid, x)
            out.append((st.labels, x))
        return out

    def _stream_findings(self, statuses: dict[str, ProbeStatus]) -> list[_Finding]:
        bad = {p for p, st in statuses.items() if st.stream_cause is not None}
        known = {p for p, st in statuses.items() if st.media_known}
        out = []
        for g in localize_probes(bad, known, self._labels):
            members = [statuses[p] for p in sorted(g.probes)]
            start = min(
                (m.stream_since for m in members if m.stream_since is not None), default=0.0
            )
            if g.is_single_probe:
                (m,) = members
                cause = m.stream_cause or Cause.UNKNOWN
                peers = self._peers(m, statuses)
                live = m.raw_cause is not None
            else:
                cause = _group_cause([m.stream_cause for m in members])
                peers = [statuses[p] for p in known - g.probes]
                live = any(m.raw_cause is not None for m in members)
            ev, summary = media_evidence(cause, g, members, peers, len(known), self.cfg)
            out.append(self._group_finding(_STREAM, cause, g, members, start, ev, summary,
                                           live, media_strength(cause, members)))
        return out

    def _chat_findings(self, statuses: dict[str, ProbeStatus]) -> list[_Finding]:
        bad = {p for p, st in statuses.items() if st.chat_bad}
        known = {p for p, st in statuses.items() if st.chat_known and st.stream_cause is None}
        out = []
        for g in localize_probes(bad, known, self._labels):
            members = [statuses[p] for p in sorted(g.probes)]
            start = min((m.chat_since for m in members if m.chat_since is not None), default=0.0)
            ev, summary = chat_evidence(g, members, len(known), self.cfg)
            out.append(self._group_finding(_CHAT, Cause.CHAT_CHANNEL, g, members, start, ev,
                                           summary, any(m.chat_raw for m in members),
                                           chat_strength(members)))
        return out

    def _group_finding(self, family: str, cause: Cause, g: ProbeGroup,
                       members: list[ProbeStatus], start: float, evidence: list[Evidence],
                       summary: str, live: bool, strength: float) -> _Finding:
        """A group of bad probes' finding: one probe alone is that probe's
        own fault (probe-local, keyed by the probe), several are a fault of
        ``cause`` in what they share (keyed by ``family`` and the group)."""
        if g.is_single_probe:
            family, key, cause = _PROBE, members[0].labels.probe_id, Cause.PROBE_LOCAL
            regions: tuple[str, ...] = ()
        else:
            key, regions = g.key, self._regions_of(g.scope)
        return _Finding(family, (family, key), g.scope, cause, start, g.probes, g.common,
                        regions=regions, evidence=evidence, summary=summary, live=live,
                        strength=strength)

    def _stock_findings(self, s: int) -> list[_Finding]:
        found = stock_findings(self.show, self._stock, self.cfg)
        by_kind: dict[tuple[str, str], list[StockFinding]] = {}
        for f in found:
            family = _STALE if f.cause == Cause.STALE_INVENTORY else _STOCK
            by_kind.setdefault((family, f.sku), []).append(f)
        all_regions = set(self.show.region_warehouses)
        out = []
        for (family, sku), fs in sorted(by_kind.items()):
            regional = [f for f in fs if f.region is not None]
            # The same SKU out everywhere: one show-wide incident.
            if len(all_regions) >= 2 and {f.region for f in regional} == all_regions:
                cause = _worst_stock(f.cause for f in regional)
                states = tuple(
                    {(st.sku, st.warehouse): st for f in regional for st in f.states}.values()
                )
                merged = StockFinding(cause, sku, None, states)
                scopes: list[tuple[dict[str, str], StockFinding]] = [({}, merged)]
            else:
                scopes = [({"region": f.region}, f) for f in regional if f.region is not None]
            scopes += [({"warehouse": f.states[0].warehouse}, f) for f in fs if f.region is None]
            for scope, f in scopes:
                regions = (
                    (scope["region"],)
                    if "region" in scope
                    else (tuple(sorted(all_regions)) if not scope else ())
                )
                ev, summary = stock_evidence(f, scope, self._business, self.cfg)
                start = min(st.ts for st in deciding_states(f, self.cfg))
                key = (family, sku, ",".join(f"{k}={v}" for k, v in sorted(scope.items())) or "*")
                out.append(
                    _Finding(
                        family,
                        key,
                        scope,
                        f.cause,
                        float(max(start, s - 3600)),
                        skus=(sku,),
                        regions=regions,
                        evidence=ev,
                        summary=summary,
                    )
                )
        return _merge_stale(out)

    def _business_findings(
        self, s: int, business: dict[str, BusinessStatus], statuses: dict[str, ProbeStatus]
    ) -> list[_Finding]:
        regional = {r: b for r, b in business.items() if r}
        moved = {r: b for r, b in regional.items() if b.anomalous}
        if not regional and "" in business and business[""].anomalous:
            moved = {"": business[""]}
        if not moved:
            return []
        grace = self.cfg.business.attribution_grace_s
        out: list[_Finding] = []
        candidates: list[BusinessStatus] = []
        for r, b in sorted(moved.items()):
            if self._explained(r, s, grace):
                continue
            in_region = [st for st in statuses.values() if not r or st.labels.region == r]
            bad = sum(1 for st in in_region if st.stream_cause is not None or st.chat_bad)
            known = sum(1 for st in in_region if st.media_known)
            if bad >= 2 or (bad and bad >= known):
                continue  # a regional stream finding is forming: it will explain this
            opened = (_BUSINESS, r) in self._open or (_BUSINESS, "*") in self._open
            if not opened and any(
                st.raw_cause is not None or st.chat_raw for st in in_region
            ):
                # Before opening, any probe showing a fault holds it back: a
                # stream fault makes viewers leave at once and its probes show
                # it a second or two later. Once open, one probe's blip does not
                # split the incident.
                continue
            candidates.append(b)
        if not candidates:
            return []
        whole = ("" in moved and not regional) or (
            len(regional) >= 2 and {b.region for b in candidates} == set(regional)
        )
        groups = (
            [("*", {}, candidates)]
            if whole
            else [(b.region, {"region": b.region}, [b]) for b in candidates]
        )
        for key, scope, members in groups:
            regions = tuple(b.region for b in members)
            probes_here = [
                st
                for st in statuses.values()
                if st.media_known and (not scope or st.labels.region in regions)
            ]
            cause = Cause.NETWORK_FINE if probes_here else Cause.UNKNOWN
            start = min((b.since for b in members if b.since is not None), default=float(s))
            ev, summary = business_evidence(
                cause, scope, members, len(probes_here), self._business, self.cfg
            )
            ev += self._conversion_evidence(start, s, regions)
            out.append(
                _Finding(
                    _BUSINESS,
                    (_BUSINESS, key),
                    scope,
                    cause,
                    start,
                    regions=regions,
                    evidence=ev,
                    summary=summary,
                    strength=business_strength(members),
                )
            )
        return out

    # --- helpers -------------------------------------------------------------
    def _refresh_viewer_evidence(self) -> None:
        """Where the platform's players saw failures or stalls rise: one
        localization per step at most (one measure of one stream or business
        incident, over up to ``ViewerSlices.max_leaves`` slices), as it runs
        on the collector's event loop and reports arrive a hundred thousand
        at a time. First an incident that closed (its final answer), then
        one never computed, then the one computed longest ago among those
        with newer reports. Closed incidents are not computed again."""
        if not len(self._viewers) or self._viewers.pending:
            return  # none yet, or a batch half filed: the next steps
        stale = []
        for t in self._all:
            if t.family not in (_STREAM, _BUSINESS):
                continue
            want = ("closed", t.end_ts) if t.end_ts is not None else (self._viewers.version,)
            for m in ViewerMeasure:
                if t.viewer_key.get(m) != want:
                    rank = (t.end_ts is None, m in t.viewer_key, t.viewer_step.get(m, -1))
                    stale.append((rank, t, m, want))
        if not stale:
            return
        _, t, m, want = min(stale, key=lambda x: x[0])
        t.viewer_ev[m] = self._viewer_evidence(t.start_ts, t.end_ts, t.regions, m)
        t.viewer_key[m], t.viewer_step[m] = want, self._steps

    def _viewer_evidence(
        self, start: float, end: float | None, regions: tuple[str, ...], measure: ViewerMeasure
    ) -> list[Evidence]:
        """Where the platform's players saw ``measure`` rise between ``start``
        and ``end`` (None: still open), if anywhere stands out."""
        since = float(math.floor(start))
        until = math.inf if end is None else end
        leaves = self._viewers.leaves(since, until, measure, reference_s=_VIEWER_REFERENCE_S)
        if leaves is None:
            return []
        return [
            viewer_evidence(measure.value, f)
            for f in where_ratio_moved(leaves)
            if f.change > 0 and _touches(leaves, f.combination, regions)
        ][:1]

    def _chat_loss_evidence(self, tr: _Tracked) -> list[Evidence]:
        """Where chat loss rose since a chat incident's start, over the
        probes' labels, if anywhere stands out (in the incident's regions)."""
        w = tr.chat_window
        if w is None:
            return []
        if tr.chat_where is not None and tr.chat_where[0] == w.upto:
            return tr.chat_where[1]
        leaves = w.leaves()
        found = [] if leaves is None else where_ratio_moved(leaves)
        out = [
            chat_loss_evidence(f)
            for f in found
            if leaves is not None and f.change > 0 and _touches(leaves, f.combination, tr.regions)
        ][:1]
        tr.chat_where = (w.upto, out)
        return out

    def _conversion_evidence(
        self, start: float, s: int, regions: tuple[str, ...]
    ) -> list[Evidence]:
        """Where conversion fell (region x SKU), if anywhere stands out."""
        leaves = conversion_leaves(self._business, second_of(start), s)
        if leaves is None:
            return []
        return [
            conversion_evidence(f)
            for f in where_ratio_moved(leaves)[:1]
            if f.change < 0 and f.combination.get("region", "") in (*regions, "")
        ]

    def _peers(self, m: ProbeStatus, statuses: dict[str, ProbeStatus]) -> list[ProbeStatus]:
        return [
            st
            for p, st in statuses.items()
            if st.labels.region == m.labels.region
            and p != m.labels.probe_id
            and st.media_known
            and st.stream_cause is None
        ]

    def _regions_of(self, scope: dict[str, str]) -> tuple[str, ...]:
        if "region" in scope:
            return (scope["region"],)
        if not scope:
            regions = {lab.region for lab in self._labels.values()} | set(self.show.regions)
            return tuple(sorted(regions))
        return ()

    def _explained(self, region: str, s: int, grace: int) -> bool:
        """Is a business move in ``region`` already explained by an incident?"""
        for t in self._all:
            if t.family not in _EXPLAINING:
                continue
            if t.end_ts is not None and s - t.end_ts > grace:
                continue
            if not t.scope or t.scope.get("region") == region or not region:
                return True
        return False

    def _required(self, family: str) -> int:
        t = self.cfg.incident
        if family == _PROBE:
            return t.probe_local_min_s
        if family in (_STOCK, _STALE):
            return max(1, self.cfg.stock.min_duration_s)
        if family == _BUSINESS:
            return self.cfg.business.confirm_s
        return max(1, t.confirm_s)

    def _apply(self, s: int, now: float, findings: list[_Finding]) -> None:
        seen: set[tuple[str, ...]] = set()
        for f in findings:
            if f.key in seen:
                continue  # a probe flagged for media and chat: media first
            seen.add(f.key)
            tr = self._open.get(f.key)
            if tr is None:
                tr = self._absorber(f)
            if tr is not None:
                self._refresh(tr, f, s)
                continue
            p = self._pending.get(f.key)
            if p is None or p.last != s - 1:
                p = self._pending[f.key] = _Pending(s, s, 0)
            p.last = s
            # Only seconds that show the fault now count towards opening: a
            # probe fading out of a blip does not build up an incident.
            if f.live:
                p.count += 1
            if p.count >= self._required(f.family):
                del self._pending[f.key]
                self._open_incident(f, s, now)
        for key in [k for k, p in self._pending.items() if p.last != s]:
            del self._pending[key]
        clear = {
            _STOCK: self.cfg.stock.clear_s,
            _STALE: self.cfg.stock.clear_s,
        }
        for key, tr in list(self._open.items()):
            if tr.last_seen != s and s - tr.last_seen >= clear.get(
                tr.family, self.cfg.incident.clear_s
            ):
                tr.end_ts = float(tr.last_seen + 1)
                del self._open[key]

    def _absorber(self, f: _Finding) -> _Tracked | None:
        if f.family not in (_STREAM, _PROBE, _CHAT) or not f.probes:
            return None
        families = {_CHAT} if f.family == _CHAT else {_STREAM, _PROBE}
        if f.family == _CHAT:
            families = {_CHAT}
        for tr in self._open.values():
            if tr.family in families and f.probes <= tr.probes:
                return tr
        return None

    def _open_incident(self, f: _Finding, s: int, now: float) -> None:
        start = f.start_ts if f.start_ts > 0 else float(s)
        # Deterministic, so a re-run over stored data names incidents as live
        # did; the count separates a finding that comes back with the same start.
        again = sum(1 for t in self._all if t.key == f.key)
        digest = hashlib.sha1(
            f"{self.show.show_id}|{'/'.join(f.key)}|{math.floor(start)}|{again}".encode()
        ).hexdigest()[:10]
        tr = _Tracked(
            family=f.family,
            key=f.key,
            incident_id=f"inc-{digest}",
            start_ts=start,
            detected_ts=now,
            scope=dict(f.scope),
            probes=set(f.probes),
            cause=f.cause,
            common=dict(f.common),
            skus=list(f.skus),
            regions=f.regions,
        )
        tr.viewers_expected = self._viewers_expected(tr)
        if tr.family == _CHAT:
            tr.chat_window = ChatLossWindow.open(
                self._chat_history, self._labels, math.floor(start), s
            )
        self._open[f.key] = tr
        self._all.append(tr)
        self._refresh(tr, f, s)

    def _refresh(self, tr: _Tracked, f: _Finding, s: int) -> None:
        tr.last_seen = s
        if f.family != tr.family or f.key != tr.key:
            return  # absorbed: keeps the incident alive, does not redefine it
        tr.votes[f.cause] += 1
        best = max(tr.votes.values())
        if tr.family in (_STREAM, _PROBE):
            order = (*CAUSE_PRIORITY, Cause.PROBE_LOCAL)
            tr.cause = next(c for c in (*order, *tr.votes) if tr.votes.get(c, 0) == best)
        else:
            tr.cause = f.cause if tr.votes[f.cause] == best else tr.cause
        best_here = tr.shown.get(f.cause)
        # Stock evidence is a state, not a measurement: the latest is the truth.
        # Elsewhere the first of the clearest seconds wins, before recovery
        # blurs it (chat losses are counted seconds after the stall began).
        latest_wins = tr.family in (_STOCK, _STALE) and f.live
        if best_here is None or latest_wins or (f.live and f.strength > best_here[0]):
            tr.shown[f.cause] = (f.strength if f.live else -math.inf, f.evidence, f.summary)
        tr.probes |= f.probes
        tr.common = f.common if f.probes == frozenset(tr.probes) else tr.common
        for sku in f.skus:
            if sku not in tr.skus:
                tr.skus.append(sku)
        # Stock does not drive viewers away: any move of theirs is another
        # incident's (or the show's) and is not this one's impact.
        lost = None if tr.family in (_STOCK, _STALE) else self._viewers_lost_now(tr, s)
        if lost is not None:
            tr.viewers_lost = max(tr.viewers_lost or 0.0, lost)

    # --- impact --------------------------------------------------------------
    def _impact_trackers(self, tr: _Tracked) -> list[RegionBusiness]:
        if tr.family == _PROBE:
            return []
        regional = [self._business[r] for r in tr.regions if r and r in self._business]
        if regional:
            return regional
        if not tr.scope and "" in self._business:
            return [self._business[""]]
        return []

    def _disturbed(self, tr: _Tracked, viewers: bool = False) -> Callable[[int], bool]:
        """Seconds inside an earlier incident where ``tr`` is (or the minute
        after it, while viewers come back): not the expected course. Stock
        incidents move orders, not viewers."""
        spans = [
            (t.start_ts - 1, (t.end_ts if t.end_ts is not None else math.inf) + _AFTERMATH_S)
            for t in self._all
            if t is not tr
            and t.family != _PROBE
            and not (viewers and t.family in (_STOCK, _STALE))
            and t.start_ts < tr.start_ts
            and (not t.regions or not tr.regions or set(t.regions) & set(tr.regions))
        ]
        return lambda s: any(a <= s < b for a, b in spans)

    def _viewers_expected(self, tr: _Tracked) -> list[ViewerCourse] | None:
        skip = self._disturbed(tr, viewers=True)
        vals = [rb.viewers_course(tr.start_ts, skip) for rb in self._impact_trackers(tr)]
        known = [v for v in vals if v is not None]
        return known or None

    def _viewers_lost_now(self, tr: _Tracked, s: int) -> float | None:
        if tr.viewers_expected is None:
            return None
        vals = [rb.viewers_now(s) for rb in self._impact_trackers(tr)]
        known = [v for v in vals if v is not None]
        if not known:
            return None
        return max(0.0, sum(c.at(s) for c in tr.viewers_expected) - sum(known))

    def _orders_lost(self, tr: _Tracked) -> float | None:
        end = tr.end_ts if tr.end_ts is not None else float(tr.last_seen)
        skip = self._disturbed(tr)
        total = None
        for rb in self._impact_trackers(tr):
            if tr.family in (_STOCK, _STALE) and tr.skus:
                lost = rb.orders_lost(tr.start_ts, end, sku=tr.skus[0], skip=skip)
            else:
                lost = rb.orders_lost(tr.start_ts, end, skip=skip)
            if lost is not None:
                total = (total or 0.0) + lost
        return total

    # --- snapshots -----------------------------------------------------------
    def _snapshot(self, tr: _Tracked) -> Incident:
        scope = dict(tr.scope)
        if (
            tr.cause == Cause.NODE_FAILURE
            and "region" in scope
            and "edge_node" not in scope
            and "isp" not in scope
            and tr.common.get("edge_node")
        ):
            scope["edge_node"] = tr.common["edge_node"]
        end = tr.end_ts if tr.end_ts is not None else float(tr.last_seen + 1)
        shown = tr.shown.get(tr.cause) or next(iter(tr.shown.values()), None)
        evidence = list(shown[1]) if shown else []
        if tr.family in (_STREAM, _BUSINESS):
            # The players' reports come per interval, after the second that
            # showed the fault most clearly: they belong to the whole incident.
            evidence += [e for m in ViewerMeasure for e in tr.viewer_ev.get(m, [])]
        evidence += self._chat_loss_evidence(tr)
        return Incident(
            incident_id=tr.incident_id,
            show_id=self.show.show_id,
            start_ts=tr.start_ts,
            end_ts=tr.end_ts,
            detected_ts=tr.detected_ts,
            severity=severity(tr.cause, scope, end - tr.start_ts, self.cfg),
            cause=tr.cause,
            scope=scope,
            probes=sorted(tr.probes),
            skus=list(tr.skus),
            evidence=evidence,
            summary=shown[2] if shown else "",
            viewers_lost=None if tr.viewers_lost is None else round(tr.viewers_lost, 1),
            orders_lost=_round(self._orders_lost(tr)),
        )


def _touches(leaves: RatioLeaves, combination: dict[str, str], regions: tuple[str, ...]) -> bool:
    """Does a combination hold a slice of one of the incident's regions?
    ("isp X" of another region's fault is not this incident's.)"""
    if "region" in combination:
        return combination["region"] in regions
    if "region" not in leaves.dims:
        return True
    return any(
        leaf["region"] in regions
        for leaf in leaves.leaves
        if all(leaf.get(k) == v for k, v in combination.items())
    )


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _group_cause(classes: list[Cause | None]) -> Cause:
    """A group's cause from its probes' causes: a node failure only when every
    probe lost media; otherwise the most common path fault."""
    known = [c for c in classes if c is not None]
    if known and all(c == Cause.NODE_FAILURE for c in known):
        return Cause.NODE_FAILURE
    counts: Counter[Cause] = Counter(c for c in known if c != Cause.NODE_FAILURE)
    if not counts:
        return Cause.NODE_FAILURE
    best = max(counts.values())
    return next(c for c in CAUSE_PRIORITY if counts.get(c, 0) == best)


def _merge_stale(findings: list[_Finding]) -> list[_Finding]:
    """Stale data is the warehouse's fault, not each SKU's: one incident per
    place for all the SKUs on screen whose figures it holds."""
    out = [f for f in findings if f.family != _STALE]
    by_place: dict[str, list[_Finding]] = {}
    for f in findings:
        if f.family == _STALE:
            by_place.setdefault(f.key[2], []).append(f)
    for place, fs in sorted(by_place.items()):
        first = fs[0]
        skus = tuple(sorted({k for f in fs for k in f.skus}))
        seen: set[str] = set()
        evidence = []
        for e in (e for f in fs for e in f.evidence if e.metric is Metric.DATA_AGE_S):
            wh = e.text.split(" data for ")[0]
            if wh not in seen:
                seen.add(wh)
                evidence.append(e)
        summary = first.summary
        if len(skus) > 1:
            summary = summary.replace(f"SKU {first.skus[0]}", "SKUs " + ", ".join(skus))
        out.append(
            _Finding(
                _STALE,
                (_STALE, place),
                first.scope,
                first.cause,
                min(f.start_ts for f in fs),
                skus=skus,
                regions=first.regions,
                evidence=evidence,
                summary=summary,
            )
        )
    return out


def _worst_stock(causes: Iterable[Cause]) -> Cause:
    cs = set(causes)
    for c in (Cause.STOCK_OUT, Cause.LOW_STOCK, Cause.STALE_INVENTORY):
        if c in cs:
            return c
    return Cause.UNKNOWN


def severity(
    cause: Cause, scope: dict[str, str], duration_s: float, cfg: DiagnosisConfig
) -> Severity:
    """From what failed, how widely, and for how long (see docs/diagnosis.md)."""
    long = duration_s >= cfg.incident.escalate_after_s
    if cause == Cause.PROBE_LOCAL:
        return Severity.INFO
    if cause == Cause.NODE_FAILURE:
        return Severity.CRITICAL
    if cause in (Cause.BANDWIDTH, Cause.PACKET_LOSS, Cause.HIGH_LATENCY, Cause.CHAT_CHANNEL,
                 Cause.AUDIO_STALLED):
        return Severity.CRITICAL if (not scope or long) else Severity.WARNING
    if cause == Cause.STOCK_OUT:
        return Severity.CRITICAL if long else Severity.WARNING
    if cause in (Cause.LOW_STOCK, Cause.STALE_INVENTORY):
        return Severity.WARNING
    if cause == Cause.NETWORK_FINE:
        return Severity.WARNING if (not scope or long) else Severity.INFO
    return Severity.WARNING
