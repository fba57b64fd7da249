"""One stream, watched for as long as the probe runs: join, measure, sample
every second, and on failure report it, back off and join again.

Every second yields one ``ProbeSample``, whatever happens: while joining
(``connecting``), after signalling failed (``join_failed`` + reason), after a
session died (``failed`` + reason). Nothing here raises out of :meth:`run`.
When the media stops and the server offers it, ICE is restarted under the
running session first, as a browser does; only a session still silent after
that is called dead and joined again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Callable

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

from probes.chat import chat_message, parse_chat_message
from probes.config import ProbeConfig, StreamTarget
from probes.joins.base import Joined, Joiner, JoinError, JoinHooks
from probes.meter import StreamMeter
from probes.rtc_seams import (
    RECEIVE_BUFFER_BYTES,
    ReceiverSeam,
    enlarge_receive_buffers,
    handle_media_on_arrival,
    ice_connection,
    socket_filenos,
)
from probes.rtt import run_rtt_checks
from probes.sinks import SampleSink
from probes.starvation import ProbeHealth, StreamDrops, socket_inode
from probes.tap import AudioTap, ReceiverTap, monotonic_ms
from qosmon.model import ConnectionState, ProbeLabels, ProbeSample

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
# A session that lasted this long was a success: the next failure starts the
# backoff again from the beginning.
HEALTHY_SESSION_S = 30.0

_PC_STATES = {
    "new": ConnectionState.NEW,
    "connecting": ConnectionState.CONNECTING,
    "connected": ConnectionState.CONNECTED,
    "disconnected": ConnectionState.DISCONNECTED,
    "failed": ConnectionState.FAILED,
    "closed": ConnectionState.CLOSED,
}


def backoff_s(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential with +-20 % jitter, so many probes do not retry in step."""
    base = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * (2 ** max(0, attempt)))
    return base * (0.8 + 0.4 * rand())


def rtc_configuration(config: ProbeConfig) -> RTCConfiguration:
    # Never aiortc's default (a public STUN server): offline it costs time and
    # leaks traffic.
    return RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in config.ice_servers])


class StreamWatcher:
    def __init__(
        self,
        target: StreamTarget,
        labels: ProbeLabels,
        config: ProbeConfig,
        joiner: Joiner,
        sink: SampleSink,
        http: aiohttp.ClientSession,
        health: ProbeHealth | None = None,
    ) -> None:
        self.target = target
        self.labels = labels
        self.config = config
        self.joiner = joiner
        self.sink = sink
        self.http = http
        # The probe's own health (shared by every stream of the process):
        # None leaves probe_lag_ms and socket_drops unknown.
        self.health = health
        self._drops = StreamDrops()
        self._meter: StreamMeter | None = None
        self._state = ConnectionState.NEW
        self._error: str | None = None
        self._joined: Joined | None = None
        self._last_logged_error: str | None = None
        self.samples_emitted = 0
        self.ice_restarts = 0  # that brought a session back, over the watcher's life

    @property
    def meter(self) -> StreamMeter | None:
        """The current session's meter (None before the first join)."""
        return self._meter

    # -- sampling ------------------------------------------------------------

    def make_sample(self, now_ms: float, wall_ts: float) -> ProbeSample:
        meter = self._meter
        state = self._state
        if state == ConnectionState.CONNECTED and self._joined is not None:
            state = _PC_STATES.get(self._joined.pc.connectionState, state)
        fields: dict[str, object] = {}
        if meter is not None and state not in (
            ConnectionState.JOIN_FAILED,
            ConnectionState.FAILED,
            ConnectionState.CLOSED,
        ):
            fields = dict(vars(meter.take(now_ms)))
            fields["ttff_ms"] = meter.ttff_ms
        if self.health is not None:
            fields.update(self._own_health(now_ms))
        return ProbeSample(
            ts=wall_ts,
            show_id=self.target.show_id,
            stream_id=self.target.stream_id,
            probe_id=self.labels.probe_id,
            region=self.labels.region,
            isp=self.labels.isp,
            edge_node=self.labels.edge_node,
            state=state,
            error=self._error[:500] if self._error else None,
            **fields,
        )

    def _own_health(self, now_ms: float) -> dict[str, object]:
        """How late the loop ran in this second and how many datagrams the
        kernel dropped at this session's sockets since the last sample."""
        assert self.health is not None
        lag = self.health.lag.lag_ms(now_ms)
        out: dict[str, object] = {"probe_lag_ms": None if lag is None else round(lag, 1)}
        joined = self._joined
        if joined is not None:
            inodes = [i for fd in socket_filenos(joined.pc)
                      if (i := socket_inode(fd)) is not None]
            out["socket_drops"] = self._drops.take(inodes, self.health.drops.drops(now_ms))
        return out

    async def _tick(self, stop: asyncio.Event) -> None:
        next_at = time.monotonic() + 1.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
            if stop.is_set():
                break
            next_at += 1.0
            if next_at < time.monotonic():  # fell behind (suspended): do not burst
                next_at = time.monotonic() + 1.0
            try:
                await self.sink.put(self.make_sample(monotonic_ms(), time.time()))
                self.samples_emitted += 1
            except Exception:
                log.exception("%s: could not emit a sample", self.target.stream_id)

    # -- sessions ------------------------------------------------------------

    def _fail(self, state: ConnectionState, reason: str) -> None:
        self._state = state
        self._error = reason
        if reason != self._last_logged_error:
            log.warning("%s/%s: %s: %s", self.target.show_id, self.target.stream_id,
                        state.value, reason)
            self._last_logged_error = reason

    async def run(self, stop: asyncio.Event) -> None:
        ticker = asyncio.create_task(self._tick(stop))
        attempt = 0
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await self._session(stop)
                except Exception as exc:  # a bug in one session must not end the probe
                    log.exception("%s: session crashed", self.target.stream_id)
                    self._fail(ConnectionState.FAILED, f"probe error: {exc!r}"[:300])
                if stop.is_set():
                    break
                attempt = 0 if time.monotonic() - started > HEALTHY_SESSION_S else attempt + 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff_s(attempt - 1))
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _session(self, stop: asyncio.Event) -> None:
        cfg = self.config
        meter = StreamMeter(
            start_ms=monotonic_ms(), chat_deadline_ms=cfg.chat_deadline_s * 1000.0
        )
        self._meter = meter
        # A rejoin after a failure keeps saying that failure until the join
        # resolves: the stream is still not watchable, and a "connecting"
        # sample between retries would read as unknown to the diagnosis.
        if self._state not in (ConnectionState.JOIN_FAILED, ConnectionState.FAILED):
            self._state = ConnectionState.CONNECTING
            self._error = None
        self._joined = None
        receivers: list[RTCRtpReceiver] = []
        tapped: list[RTCRtpReceiver] = []  # every receiver the join handed over
        chat_ready = asyncio.Event()
        chat_id = f"{self.labels.probe_id}/{self.target.stream_id}/{secrets.token_hex(4)}"

        def on_receiver(receiver: RTCRtpReceiver) -> None:
            tapped.append(receiver)
            if ReceiverSeam(receiver).kind == "audio":
                AudioTap(receiver, meter)
                return
            ReceiverTap(receiver, meter, decode=cfg.decode_video)
            receivers.append(receiver)

        def on_audio_receiver(receiver: RTCRtpReceiver) -> None:
            # Measured from its packets, never decoded: nothing to drain.
            tapped.append(receiver)
            AudioTap(receiver, meter)

        def on_chat_text(text: str) -> None:
            seq = parse_chat_message(text, chat_id)
            if seq is not None:
                meter.chat.echo(seq, monotonic_ms())

        hooks = JoinHooks(
            rtc_config=rtc_configuration(cfg),
            on_receiver=on_receiver,
            on_chat_text=on_chat_text,
            on_chat_ready=chat_ready.set,
            on_audio_receiver=on_audio_receiver,
        )
        try:
            joined = await asyncio.wait_for(
                self.joiner.join(self.target, self.http, hooks), cfg.join_timeout_s
            )
        except JoinError as exc:
            self._fail(ConnectionState.JOIN_FAILED, str(exc))
            return
        except TimeoutError:
            self._fail(ConnectionState.JOIN_FAILED,
                       f"signalling took longer than {cfg.join_timeout_s:g} s")
            return
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            self._fail(ConnectionState.JOIN_FAILED, f"{type(exc).__name__}: {exc}")
            return
        self._joined = joined
        self._state = ConnectionState.CONNECTED  # refined from pc state per sample
        self._error = None
        _note_receive_buffer(enlarge_receive_buffers(joined.pc))
        handle_media_on_arrival(joined.pc)
        tasks: list[asyncio.Task[None]] = []
        try:
            if receivers:
                rtt_task = asyncio.create_task(run_rtt_checks(
                    ice_connection(receivers[0]), lambda rtt: meter.rtt(rtt, monotonic_ms()),
                    on_asked=lambda: meter.rtt_asked(monotonic_ms())))
                rtt_task.add_done_callback(lambda t: self._rtt_ended(t, meter))
                tasks.append(rtt_task)
                if cfg.decode_video:
                    tasks.append(asyncio.create_task(_drain(receivers[0])))
            # A receiver the join did not hand over is decoded by aiortc
            # into an unbounded queue whether or not anyone reads it: drain it.
            for transceiver in joined.pc.getTransceivers():
                untapped = transceiver.receiver
                if untapped not in tapped and untapped.track is not None:
                    tasks.append(asyncio.create_task(_drain(untapped)))
            if joined.send_chat is not None and self.target.chat:
                tasks.append(asyncio.create_task(
                    self._chat(joined, meter, chat_id, chat_ready)))
            reason = await self._watch_session(joined, meter, stop)
            if reason is not None:
                self._fail(ConnectionState.FAILED, reason)
            else:
                self._state = ConnectionState.CLOSED
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            with contextlib.suppress(Exception):
                await asyncio.wait_for(joined.close(), 5.0)
            self._joined = None

    def _rtt_ended(self, task: asyncio.Task[None], meter: StreamMeter) -> None:
        """The RTT checks only end when cancelled; any other end is logged
        and every later sample of the session says why RTT is unknown."""
        if task.cancelled():
            return
        exc = task.exception()
        reason = f"RTT checks stopped: {exc!r}" if exc else "RTT checks stopped"
        log.warning("%s/%s: %s", self.target.show_id, self.target.stream_id, reason,
                    exc_info=exc)
        meter.rtt_failed(reason[:300])

    async def _watch_session(
        self, joined: Joined, meter: StreamMeter, stop: asyncio.Event
    ) -> str | None:
        """Wait until the session dies (its reason) or the probe stops (None)."""
        dead_ms = self.config.dead_after_s * 1000.0
        restart_ms = self.config.ice_restart_after_s * 1000.0
        restarted_after: float | None = None  # the last packet before the last restart
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
            pc_state = joined.pc.connectionState
            if pc_state in ("failed", "closed"):
                return f"peer connection {pc_state}"
            now = monotonic_ms()
            if meter.first_frame_ms is None:
                waited = now - meter.start_ms
                if waited > dead_ms:
                    return f"no first video frame for {waited / 1000:.0f} s (pc {pc_state})"
                continue
            # Packets still arriving but no frame complete is a starved stream
            # (bandwidth, loss), which the samples report as it lasts; leaving
            # and rejoining then would only add a join failure to the picture.
            # Only a stream that stopped sending is dead.
            silent = meter.no_packet_ms(now)
            if (joined.restart_ice is not None and restart_ms < silent < dead_ms
                    and restarted_after != meter.last_packet_ms):
                # Once per silence: a path that came back needs no second
                # restart, a stream that stopped sending is not helped by one.
                restarted_after = meter.last_packet_ms
                await self._restart_ice(joined, silent)
                continue
            if silent > dead_ms:
                return f"no media packets for {silent / 1000:.0f} s (pc {pc_state})"
        return None

    async def _restart_ice(self, joined: Joined, silent_ms: float) -> None:
        assert joined.restart_ice is not None
        where = f"{self.target.show_id}/{self.target.stream_id}"
        started = time.monotonic()
        try:
            await joined.restart_ice()
        except JoinError as exc:
            log.warning("%s: ICE restart after %.1f s without media failed: %s",
                        where, silent_ms / 1000, exc)
            return
        self.ice_restarts += 1
        _note_receive_buffer(enlarge_receive_buffers(joined.pc))  # the new path's sockets
        handle_media_on_arrival(joined.pc)
        log.info("%s: ICE restarted after %.1f s without media (took %.2f s)",
                 where, silent_ms / 1000, time.monotonic() - started)

    async def _chat(
        self, joined: Joined, meter: StreamMeter, chat_id: str, ready: asyncio.Event
    ) -> None:
        assert joined.send_chat is not None
        await ready.wait()
        interval = self.target.chat_interval_s
        while True:
            seq = meter.chat.send(monotonic_ms())
            try:
                joined.send_chat(chat_message(chat_id, seq, time.time() * 1000.0))
            except Exception as exc:  # a closed channel: counted lost by the ledger
                log.debug("chat send failed: %s", exc)
            await asyncio.sleep(interval)


_buffer_capped_said = False


def _note_receive_buffer(granted: int) -> None:
    """Say once per process when the kernel capped the media sockets'
    receive buffer (the kernel reports twice the bytes asked for)."""
    global _buffer_capped_said
    if 0 < granted < 2 * RECEIVE_BUFFER_BYTES and not _buffer_capped_said:
        _buffer_capped_said = True
        log.warning("media socket receive buffer capped at %d bytes (asked %d): with many "
                    "streams a busy probe may lose packets at its own sockets; raise "
                    "net.core.rmem_max", granted // 2, RECEIVE_BUFFER_BYTES)


async def _drain(receiver: RTCRtpReceiver) -> None:
    """With decoding on, aiortc's frame queue is unbounded: keep it empty."""
    track = receiver.track
    while True:
        try:
            await track.recv()
        except MediaStreamError:
            return
