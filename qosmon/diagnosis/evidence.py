"""The evidence behind each verdict, and the one sentence a person reads.

Each ``Evidence`` is a signal a person would check themselves: what was
observed, what it was before (the probes' own healthy baseline or the
series' expected course), the threshold that decided, and one line of text.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from qosmon.diagnosis.business import BusinessStatus, RegionBusiness, typical_rate
from qosmon.diagnosis.config import DiagnosisConfig
from qosmon.diagnosis.localize import Finding
from qosmon.diagnosis.probe_health import ProbeStatus, second_of
from qosmon.diagnosis.scope import ProbeGroup
from qosmon.diagnosis.stock import StockFinding, deciding_states
from qosmon.model import Cause, ConnectionState, Evidence, Metric


def _med(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "unknown"
    return f"{x:,.{digits}f}"


def _pct_change(obs: float | None, base: float | None) -> str:
    if obs is None or base is None or base == 0:
        return ""
    return f" ({(obs - base) / base * 100:+.0f}%)"


def where(scope: Mapping[str, str]) -> str:
    if not scope:
        return "every region"
    if "probe_id" in scope:
        return f"probe {scope['probe_id']}"
    return str(scope.get("region", "?"))


def _ev(
    metric: Metric, obs: float | None, base: float | None, thr: float | None, unit: str, text: str
) -> Evidence:
    return Evidence(
        metric=metric, observed=_r(obs), baseline=_r(base), threshold=_r(thr), unit=unit, text=text
    )


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def media_evidence(
    cause: Cause,
    group: ProbeGroup,
    members: Sequence[ProbeStatus],
    peers: Sequence[ProbeStatus],
    n_known: int,
    cfg: DiagnosisConfig,
) -> tuple[list[Evidence], str]:
    m = cfg.media
    views = [x.view for x in members if x.view is not None]
    bases = [x.baseline for x in members]
    bitrate = _med([v.bitrate_kbps for v in views])
    bitrate0 = _med([b.bitrate_kbps for b in bases])
    fps = _med([v.fps for v in views])
    fps0 = _med([b.fps for b in bases])
    rtt = _med([v.rtt_ms for v in views])
    rtt0 = _med([b.rtt_ms for b in bases])
    loss = _med([v.loss_pct for v in views])
    no_frame = max((v.no_frame_ms or 0.0 for v in views), default=0.0)
    received = _med([v.received_kbps for v in views])
    received0 = _med([b.received_kbps for b in bases])
    rtx = _med([v.rtx_kbps for v in views])
    share = _med([v.rtx_share for v in views])
    stuck = max((v.stuck_ms or 0.0 for v in views), default=0.0)
    stalled = [v.audio_stalled_ms for v in views if v.audio_stalled_ms is not None]
    audio_stalled = max(stalled, default=None)
    hearing = sum(1 for v in views if (v.audio_stalled_ms or 0.0) >= m.audio_stalled_ms)
    audio_loss = _med([v.audio_loss_pct for v in views])
    down = sum(
        1
        for v in views
        if v.state
        in (ConnectionState.DISCONNECTED, ConnectionState.FAILED, ConnectionState.JOIN_FAILED)
    )
    k = len(members)
    n = len(members) + len(peers) if group.is_single_probe else k
    ev: list[Evidence] = []
    e_bitrate = _ev(
        Metric.BITRATE_KBPS,
        bitrate,
        bitrate0,
        None if bitrate0 is None else m.bitrate_drop_ratio * bitrate0,
        "kbps",
        f"bitrate {_fmt(bitrate)} kbps vs {_fmt(bitrate0)} kbps before"
        f"{_pct_change(bitrate, bitrate0)}",
    )
    e_rtt = _ev(
        Metric.RTT_MS,
        rtt,
        rtt0,
        m.rtt_ms,
        "ms",
        f"RTT {_fmt(rtt)} ms vs {_fmt(rtt0)} ms before (SLO {m.rtt_ms:.0f} ms)",
    )
    e_fps = _ev(
        Metric.FPS,
        fps,
        fps0,
        None if fps0 is None else m.fps_drop_ratio * fps0,
        "fps",
        f"{_fmt(fps, 1)} fps vs {_fmt(fps0, 1)} before{_pct_change(fps, fps0)}",
    )
    e_loss = _ev(
        Metric.LOSS_PCT,
        loss,
        None,
        m.loss_pct,
        "%",
        f"packet loss {_fmt(loss, 1)}% (SLO {m.loss_pct:g}%)",
    )
    e_received = _ev(
        Metric.RECEIVED_KBPS,
        received,
        received0,
        None if received0 is None else m.received_drop_ratio * received0,
        "kbps",
        f"received {_fmt(received)} kbps with retransmissions vs {_fmt(received0)} kbps "
        f"before{_pct_change(received, received0)}",
    )
    e_rtx = _ev(
        Metric.RTX_KBPS,
        rtx,
        None,
        None if received is None else m.rtx_share_max * received,
        "kbps",
        f"retransmissions {_fmt(rtx)} kbps"
        + ("" if share is None else f", {share:.0%} of what was received")
        + f" (a lossy path's sender repairs; threshold {m.rtx_share_max:.0%})",
    )
    e_stuck = _ev(
        Metric.STUCK_MS,
        stuck,
        None,
        None,
        "ms",
        f"picture stuck {stuck / 1000:.1f} s of the last {m.window_s} s",
    )
    e_audio = _ev(
        Metric.AUDIO_STALLED_MS,
        audio_stalled,
        None,
        m.audio_stalled_ms,
        "ms",
        f"no audio for {_fmt((audio_stalled or 0.0) / 1000, 1)} s of the last {m.window_s} s "
        f"on {hearing}/{k} probes (threshold {m.audio_stalled_ms / 1000:g} s)",
    )
    e_audio_loss = _ev(
        Metric.AUDIO_LOSS_PCT,
        audio_loss,
        None,
        m.loss_pct,
        "%",
        f"audio packet loss {_fmt(audio_loss, 1)}% (SLO {m.loss_pct:g}%)",
    )
    # What only probes that report them can add: the received rate tells a
    # thin link from a lossy one, stuck time shows a stall while it lasts.
    extra: list[Evidence] = []
    if stuck > 0:
        extra.append(e_stuck)
    if hearing and cause != Cause.AUDIO_STALLED:
        extra.append(e_audio)
    adapted = (
        received is not None
        and received0 is not None
        and received < m.received_drop_ratio * received0
        and (loss is None or loss <= m.loss_pct)
    )
    label = where(group.scope)
    if cause == Cause.NODE_FAILURE:
        ev.append(
            _ev(
                Metric.PROBES_WITHOUT_MEDIA,
                float(k),
                None,
                None,
                "probes",
                f"{k}/{n} probes lost media at once"
                + (f", {len(peers)} others fine" if peers else ""),
            )
        )
        ev.append(
            _ev(
                Metric.NO_FRAME_MS,
                no_frame,
                None,
                m.no_frame_s * 1000,
                "ms",
                f"no frame for {no_frame / 1000:.0f} s (threshold {m.no_frame_s:g} s)",
            )
        )
        ev.append(e_bitrate)
        if down:
            ev.append(
                _ev(
                    Metric.DISCONNECTED_PROBES,
                    float(down),
                    None,
                    None,
                    "probes",
                    f"{down} probe(s) in state disconnected/failed",
                )
            )
        node = group.common.get("edge_node")
        if not group.scope:
            what = "the origin stopped serving"
        elif node:
            what = f"edge node {node} stopped serving"
        else:
            what = "their media stopped"
        summary = (
            f"Viewers in {label} are losing media: {what} "
            f"({k}/{n} probes, no frames for {no_frame / 1000:.0f} s)"
        )
    elif cause == Cause.BANDWIDTH and adapted:
        ev += [e_received, e_loss, e_rtx, e_bitrate, e_fps, e_rtt, *extra]
        summary = (
            f"Viewers in {label} get a squeezed stream: bandwidth shortage, the sender "
            f"lowered its bitrate to fit (received {_fmt(received)} vs {_fmt(received0)} kbps "
            f"before, loss {_fmt(loss, 1)}%, retransmissions "
            f"{'unknown' if share is None else f'{share:.0%}'}, {_fmt(fps, 0)} fps; "
            f"{k}/{n} probes)"
        )
    elif cause == Cause.BANDWIDTH:
        ev += [e_bitrate, e_rtt, e_fps, e_loss]
        if received is not None:
            ev.append(e_received)
        ev += extra
        summary = (
            f"Viewers in {label} get a squeezed stream: bandwidth shortage "
            f"(bitrate {_fmt(bitrate)} vs {_fmt(bitrate0)} kbps, queueing RTT "
            f"{_fmt(rtt)} vs {_fmt(rtt0)} ms, {_fmt(fps, 0)} fps; {k}/{n} probes)"
        )
    elif cause == Cause.PACKET_LOSS:
        ev += [e_loss, e_rtt, e_bitrate]
        if received is not None:
            ev += [e_received, e_rtx]
        if hearing:
            ev.append(e_audio_loss)
        ev += extra
        summary = (
            f"Viewers in {label} see stutter: {_fmt(loss, 1)}% packet loss on the path "
            f"while latency is normal ({_fmt(rtt)} ms; {k}/{n} probes)"
        )
        if hearing:
            summary += f"; audio stalled on {hearing}/{k} probes with it"
    elif cause == Cause.AUDIO_STALLED:
        ev += [e_audio, e_fps, e_loss]
        if audio_loss is not None:
            ev.append(e_audio_loss)
        ev += [e for e in extra if e is not e_audio]
        node = group.common.get("edge_node")
        if not group.scope:
            what = ("audio stopped at the source (microphone, encoder or origin) in every "
                    "region at once; not the network")
        elif node:
            what = f"audio stopped on edge node {node}'s path while other places hear the host"
        else:
            what = f"audio stopped on the way to {label} while other places hear the host"
        summary = (
            f"Viewers in {label} cannot hear the host: {what}; video flows "
            f"({_fmt(fps, 0)} fps, loss {_fmt(loss, 1)}%; {k}/{n} probes)"
        )
    elif cause == Cause.HIGH_LATENCY:
        ev += [e_rtt, e_bitrate, e_loss, *extra]
        summary = (
            f"Viewers in {label} see high latency: RTT {_fmt(rtt)} ms vs {_fmt(rtt0)} ms "
            f"before, media still flowing at {_fmt(bitrate)} kbps ({k}/{n} probes)"
        )
    else:
        ev += [e_bitrate, e_rtt, e_loss]
        summary = f"Viewers in {label} have stream problems ({k}/{n} probes)"
    ttff = _med([v.ttff_ms for v in views])
    if ttff is not None and ttff > m.ttff_s * 1000:
        ev.append(
            _ev(
                Metric.TTFF_MS,
                ttff,
                None,
                m.ttff_s * 1000,
                "ms",
                f"time to first frame {ttff / 1000:.1f} s (SLO {m.ttff_s:g} s)",
            )
        )
    if group.is_single_probe:
        p = group.scope["probe_id"]
        inner = summary.split(": ", 1)[-1]
        ev.append(
            _ev(
                Metric.HEALTHY_PEERS,
                float(len(peers)),
                None,
                None,
                "probes",
                f"{len(peers)} other probe(s) in {members[0].labels.region} are fine",
            )
        )
        summary = (
            f"Probe {p} in {members[0].labels.region} has its own problem ({cause.value}: "
            f"{inner}); its {len(peers)} peer(s) are fine, not a regional fault"
        )
    return ev, summary


def chat_evidence(
    group: ProbeGroup, members: Sequence[ProbeStatus], n_known: int, cfg: DiagnosisConfig
) -> tuple[list[Evidence], str]:
    c = cfg.chat
    views = [x.view for x in members if x.view is not None]
    sent = sum(v.chat_sent for v in views)
    lost = sum(v.chat_lost for v in views)
    rtt = _med([v.chat_rtt_ms for v in views])
    fps = _med([v.fps for v in views])
    ratio = lost / sent if sent else None
    by_loss = lost >= c.min_lost and ratio is not None and ratio >= c.lost_ratio
    # Lead with the signal that decided: messages lost, or delivered too late.
    e_lost = _ev(
        Metric.CHAT_LOST_RATIO,
        ratio,
        None,
        c.lost_ratio,
        "",
        f"{lost}/{sent} chat messages not delivered in {c.window_s} s "
        f"(threshold {c.lost_ratio:.0%})",
    )
    if rtt is None:
        rtt_text = f"no chat message came back in {c.window_s} s"
    else:
        rtt_text = f"chat delivery time {_fmt(rtt)} ms (threshold {c.rtt_ms:.0f} ms)"
    e_rtt = _ev(Metric.CHAT_RTT_MS, rtt, None, c.rtt_ms, "ms", rtt_text)
    ev = [e_lost, e_rtt] if by_loss or rtt is None or rtt < c.rtt_ms else [e_rtt, e_lost]
    ev.append(
        _ev(Metric.FPS, fps, None, None, "fps", f"media fine: {_fmt(fps, 1)} fps, no stream fault")
    )
    k = len(members)
    if group.is_single_probe:
        summary = (
            f"Probe {group.scope['probe_id']} alone cannot chat ({lost}/{sent} messages "
            f"lost); other probes are fine, not a chat-channel fault"
        )
    else:
        what = (
            f"{lost}/{sent} messages not delivered"
            if by_loss or rtt is None
            else f"messages take {_fmt(rtt)} ms to arrive"
        )
        summary = (
            f"Chat is failing for viewers in {where(group.scope)}: {what} "
            f"while media is fine ({k}/{max(n_known, k)} probes)"
        )
    return ev, summary


def stock_evidence(
    f: StockFinding,
    scope: Mapping[str, str],
    business: Mapping[str, RegionBusiness],
    cfg: DiagnosisConfig,
) -> tuple[list[Evidence], str]:
    ev: list[Evidence] = []
    for st in f.states:
        if f.cause == Cause.STALE_INVENTORY:
            ev.append(
                _ev(
                    Metric.DATA_AGE_S,
                    st.data_age_s,
                    None,
                    None,
                    "s",
                    f"warehouse {st.warehouse} data for {st.sku} is {st.level.value}"
                    + (f", {st.data_age_s:.0f} s old" if st.data_age_s is not None else ""),
                )
            )
        else:
            ev.append(
                _ev(
                    Metric.ON_HAND,
                    None if st.on_hand is None else float(st.on_hand),
                    None,
                    st.forecast_units,
                    "units",
                    f"warehouse {st.warehouse}: {_fmt(st.on_hand)} on hand "
                    f"({st.level.value}), forecast {_fmt(st.forecast_units)} until show end",
                )
            )
    region = scope.get("region")
    rb = business.get(region) if region else None
    if rb is not None and rb.sku_orders.get(f.sku):
        series = rb.sku_orders[f.sku]
        last = max(series)
        onset = second_of(min(st.ts for st in deciding_states(f, cfg)))
        recent = sum(series.get(t, 0) for t in range(last - 29, last + 1))
        # The usual pace before the onset, not the flash of demand that
        # emptied the shelf.
        before = typical_rate([series.get(t, 0) for t in range(onset - 120, onset)]) * 30
        ev.append(
            _ev(
                Metric.SKU_ORDERS_30S,
                float(recent),
                before,
                None,
                "orders",
                f"orders of {f.sku} in {region}: {recent} in the last 30 s vs "
                f"{before:.1f} per 30 s usually",
            )
        )
    whs = ", ".join(sorted({st.warehouse for st in f.states}))
    place = where(scope) if "warehouse" not in scope else f"warehouse {scope['warehouse']}"
    if f.cause == Cause.STOCK_OUT:
        empty = ", ".join(sorted({st.warehouse for st in f.states if st.on_hand == 0}))
        elsewhere = [st for st in f.states if st.on_hand]
        summary = (
            f"Orders in {place} are hit by stock: SKU {f.sku} on screen is sold out in "
            f"{empty} (0 on hand); the stream is not the problem"
        )
        if elsewhere:
            summary += "; still in " + ", ".join(
                f"{st.warehouse} ({st.on_hand})" for st in elsewhere)
    elif f.cause == Cause.LOW_STOCK:
        left = sum(st.on_hand or 0 for st in f.states)
        mins = _med([st.minutes_left for st in f.states])
        summary = (
            f"SKU {f.sku} on screen is about to sell out for {place}: {left} left in "
            f"{whs}" + (f", {mins:.0f} min at current sales" if mins is not None else "")
        )
    else:
        summary = (
            f"Stock figures for SKU {f.sku} on screen cannot be trusted in {place}: "
            f"warehouse {whs} data is stale or faulty"
        )
    return ev, summary


def business_evidence(
    cause: Cause,
    scope: Mapping[str, str],
    members: Sequence[BusinessStatus],
    n_probes: int,
    business: Mapping[str, RegionBusiness],
    cfg: DiagnosisConfig,
) -> tuple[list[Evidence], str]:
    ev: list[Evidence] = []
    obs_v = exp_v = 0.0
    have_v = False
    moved: list[str] = []
    for b in members:
        moved += [w for w in b.what_moved() if w not in moved]
        v = b.viewers
        if v is not None and v.expected is not None:
            have_v = True
            obs_v += v.observed
            exp_v += v.expected
        o = b.orders
        if o is not None and o.expected is not None and o.anomalous:
            ev.append(
                _ev(
                    Metric.ORDERS,
                    float(o.observed),
                    o.expected,
                    None,
                    "orders",
                    f"orders in {b.region or 'the show'}: {o.observed} in "
                    f"{cfg.business.orders_window_s} s vs {o.expected:.1f} expected",
                )
            )
        ch = b.chat
        if ch is not None and ch.expected is not None and ch.anomalous:
            ev.append(
                _ev(
                    Metric.CHAT_MESSAGES,
                    float(ch.observed),
                    ch.expected,
                    None,
                    "messages",
                    f"chat messages in {b.region or 'the show'}: {ch.observed} vs "
                    f"{ch.expected:.1f} expected",
                )
            )
    lv_obs = sum(b.leaves.observed for b in members if b.leaves and b.leaves.anomalous)
    lv_exp = sum(b.leaves.expected or 0.0 for b in members if b.leaves and b.leaves.anomalous)
    if lv_exp:
        ev.insert(
            0,
            _ev(
                Metric.VIEWERS_LEAVING,
                float(lv_obs),
                lv_exp,
                cfg.business.leaves_ratio * lv_exp,
                "viewers",
                f"{lv_obs:,} viewers left in {cfg.business.leaves_window_s} s vs "
                f"{lv_exp:,.0f} usually (x{lv_obs / lv_exp:.1f})",
            ),
        )
    if have_v:
        ev.insert(
            len(ev) if lv_exp else 0,
            _ev(
                Metric.VIEWERS_ONLINE,
                obs_v,
                exp_v,
                exp_v * (1 - cfg.business.viewers_drop_rel),
                "viewers",
                f"viewers {obs_v:,.0f} vs {exp_v:,.0f} expected{_pct_change(obs_v, exp_v)}",
            ),
        )
    ev.append(
        _ev(
            Metric.HEALTHY_PROBES,
            float(n_probes),
            None,
            None,
            "probes",
            f"{n_probes} probe(s) here see a healthy stream; no SKU on screen out of stock",
        )
    )
    # Each series that moved with its own change: a viewers figure next to an
    # orders drop would read "dropped (+0%)".
    parts = []
    if lv_exp:
        parts.append(f"viewers are leaving at x{lv_obs / lv_exp:.1f} the usual rate")
    if have_v and "viewers" in moved:
        parts.append(f"viewers dropped{_pct_change(obs_v, exp_v)}")
    for name, attr in (("orders", "orders"), ("chat messages", "chat")):
        obs = exp = 0.0
        for b in members:
            r = getattr(b, attr)
            if r is not None and r.anomalous and r.expected:
                obs += r.observed
                exp += r.expected
        if exp:
            parts.append(f"{name} dropped{_pct_change(obs, exp)}")
    what = ", ".join(parts) or "business dropped"
    if cause == Cause.NETWORK_FINE:
        summary = (
            f"In {where(scope)} {what} while stream and stock are fine "
            f"({n_probes} healthy probes): content or audience"
        )
    else:
        summary = (
            f"In {where(scope)} {what}; no probe watches there, so the stream cannot "
            f"be judged"
        )
    return ev, summary


# --- how clearly one second shows a cause -----------------------------------
# Whole numbers count the probes whose own window shows the cause this very
# second; the fraction in [0, 1) ranks seconds with as many by how far the
# deciding signal is from normal. The engine keeps the evidence of the
# strongest second.


def media_strength(cause: Cause, members: Sequence[ProbeStatus]) -> float:
    showing = sum(1 for m in members if m.raw_cause == cause)
    views = [m.view for m in members if m.view is not None]
    magnitude = 0.0
    if cause == Cause.NODE_FAILURE:
        no_frame = max((v.no_frame_ms or 0.0 for v in views), default=0.0)
        magnitude = min(no_frame / 1000, 60.0) / 61
    elif cause == Cause.BANDWIDTH:
        drops = [
            1 - v.bitrate_kbps / m.baseline.bitrate_kbps
            for m in members
            if (v := m.view) is not None
            and v.bitrate_kbps is not None
            and m.baseline.bitrate_kbps
        ]
        magnitude = statistics.median(drops) if drops else 0.0
    elif cause == Cause.PACKET_LOSS:
        loss = _med([v.loss_pct for v in views])
        magnitude = (loss or 0.0) / 100
    elif cause == Cause.HIGH_LATENCY:
        rtt = _med([v.rtt_ms for v in views])
        magnitude = min(rtt or 0.0, 9_999.0) / 10_000
    elif cause == Cause.AUDIO_STALLED:
        stalled = max((v.audio_stalled_ms or 0.0 for v in views), default=0.0)
        magnitude = min(stalled / 10_000, 0.999)
    return showing + min(max(magnitude, 0.0), 0.999)


def chat_strength(members: Sequence[ProbeStatus]) -> float:
    showing = sum(1 for m in members if m.chat_raw)
    views = [m.view for m in members if m.view is not None]
    sent = sum(v.chat_sent for v in views)
    lost = sum(v.chat_lost for v in views)
    return showing + (min(lost / sent, 1.0) * 0.999 if sent else 0.0)


def business_strength(members: Sequence[BusinessStatus]) -> float:
    drops = [0.0]
    for b in members:
        lv = b.leaves
        if lv is not None and lv.anomalous and lv.expected:
            drops.append(1 - lv.expected / max(lv.observed, 1))
        if b.viewers is not None and b.viewers.anomalous and b.viewers.rel_change is not None:
            drops.append(-b.viewers.rel_change)
        for c in (b.orders, b.chat):
            if c is not None and c.anomalous and c.expected:
                drops.append(1 - c.observed / c.expected)
    return min(max(drops), 0.999)


# Orders per viewer-second to orders per 1,000 viewer-minutes.
_PER_1000_VIEWER_MIN = 60_000.0


def conversion_evidence(where: Finding) -> Evidence:
    """Where conversion moved (region x SKU), judged at the viewers there."""
    place = " ".join(f"{k} {v}" for k, v in where.combination.items()) or "the whole show"
    obs = where.observed * _PER_1000_VIEWER_MIN
    exp = where.expected * _PER_1000_VIEWER_MIN
    return _ev(
        Metric.CONVERSION,
        obs,
        exp,
        None,
        "orders per 1,000 viewer-min",
        f"conversion in {place}: {obs:.2f} vs {exp:.2f} orders per 1,000 viewer-minutes "
        f"expected ({where.explains:.0%} of the change)",
    )


def viewer_evidence(measure: str, where: Finding) -> Evidence:
    """Where the platform's players saw more failures or stalls, judged on
    the ratio at the sessions (watch time) there."""
    place = " ".join(f"{k} {v}" for k, v in where.combination.items()) or "the whole audience"
    obs, exp = where.observed * 100, where.expected * 100
    if measure == "failure_rate":
        metric, unit, what = Metric.FAILURE_RATE, "% of sessions", "sessions failing"
    else:
        metric, unit, what = Metric.REBUFFER_RATIO, "% of watch time", "watch time stalled"
    return _ev(
        metric,
        obs,
        exp,
        None,
        unit,
        f"{what} in {place}: {obs:.2f} % vs {exp:.2f} % expected "
        f"({where.explains:.0%} of the rise, players' own reports)",
    )


def chat_loss_evidence(where: Finding) -> Evidence:
    """Where the probes' chat loss (lost / sent) rose, over their labels."""
    place = " ".join(f"{k} {v}" for k, v in where.combination.items())
    place = f"in {place}" if place else "across all probes"
    return _ev(
        Metric.CHAT_LOST_RATIO,
        where.observed,
        where.expected,
        None,
        "",
        f"chat loss rose {place}: {where.observed:.0%} of messages lost vs "
        f"{where.expected:.1%} expected ({where.explains:.0%} of the rise, probes' chat)",
    )
