"""The probe refuses to start when aiortc/aioice lost a private name it relies
on, instead of measuring wrongly; and a dead RTT task says so in the samples."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import aioice
import pytest
from aiortc import RTCRtpReceiver

from probes import rtc_seams, rtt
from probes.agent import ProbeAgent
from probes.config import ProbeConfig
from probes.ice_host_pin import pin_host_addresses
from probes.rtc_seams import SeamError, check_seams
from probes.sinks import MemorySink
from qosmon import cli
from qosmon.model import ConnectionState
from tests.test_probe_whep import WhepOrigin, encode_clip


@pytest.fixture(autouse=True)
def fresh_check() -> Iterator[None]:
    rtc_seams.forget_check()
    yield
    rtc_seams.forget_check()


def _config(url: str = "http://127.0.0.1:9/whep") -> ProbeConfig:
    return ProbeConfig.model_validate({
        "labels": {"probe_id": "p1", "region": "test"},
        "streams": [{"show_id": "show", "stream_id": "s1", "join": "whep", "url": url}],
        "ice_host_addresses": ["127.0.0.1"],
    })


async def _start_fails(config: ProbeConfig) -> str:
    sink = MemorySink()
    with pytest.raises(SeamError) as err:
        await asyncio.wait_for(ProbeAgent(config, sink).run(asyncio.Event()), 5)
    assert sink.samples == []  # refused before watching anything
    return str(err.value)


async def test_the_installed_versions_pass() -> None:
    check_seams()


async def test_a_renamed_receiver_method_refuses_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(RTCRtpReceiver, "_handle_rtp_packet")
    message = await _start_fails(_config())
    assert "RTCRtpReceiver._handle_rtp_packet()" in message
    assert "aiortc 1.16.0" in message and "aioice 0.13.0" in message


async def test_a_renamed_receiver_attribute_refuses_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if a new aiortc called its decoder queue something else: replacing
    # it would create a dead attribute and decoding would quietly come back.
    original = RTCRtpReceiver.__init__

    def renamed(self: RTCRtpReceiver, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        self._RTCRtpReceiver__frames_to_decode = self._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
        del self._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]

    monkeypatch.setattr(RTCRtpReceiver, "__init__", renamed)
    message = await _start_fails(_config())
    assert "RTCRtpReceiver.__decoder_queue" in message


async def test_a_renamed_statistics_class_refuses_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The probe's own receive path keeps aiortc's receiver-report statistics
    # with aiortc's own class: without it the sender would get no reports.
    import aiortc.rtcrtpreceiver

    monkeypatch.delattr(aiortc.rtcrtpreceiver, "StreamStatistics")
    message = await _start_fails(_config())
    assert "StreamStatistics" in message


async def test_a_renamed_estimator_counter_refuses_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The probe swaps the REMB estimator's bitrate counter for a cheaper one
    # with the same figures: on an estimator without it, the swap would set a
    # dead attribute and the REMB would be computed from nothing new.
    import aiortc.rate

    original = aiortc.rate.RemoteBitrateEstimator.__init__

    def renamed(self: Any) -> None:
        original(self)
        del self.incoming_bitrate

    monkeypatch.setattr(aiortc.rate.RemoteBitrateEstimator, "__init__", renamed)
    message = await _start_fails(_config())
    assert "RemoteBitrateEstimator.incoming_bitrate" in message


def test_the_arrival_clock_is_aiortcs() -> None:
    import aiortc.clock

    before = aiortc.clock.current_ms()
    ours = rtc_seams.ntp_ms()
    after = aiortc.clock.current_ms()
    assert before - 1 <= ours <= after + 1


async def test_a_renamed_aioice_attribute_refuses_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = aioice.Connection.__init__

    def renamed(self: aioice.Connection, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        del self._nominated

    monkeypatch.setattr(aioice.Connection, "__init__", renamed)
    message = await _start_fails(_config())
    assert "aioice Connection._nominated" in message and "0.13.0" in message


def test_the_command_exits_2_with_the_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delattr(RTCRtpReceiver, "_send_rtcp_nack")
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # cli.main adds one
    code = cli.main(["probe", "--whep", "http://127.0.0.1:9/whep", "--duration", "2",
                     "--output", "-", "--ice-host", "127.0.0.1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "_send_rtcp_nack" in err and "aiortc 1.16.0" in err
    assert "Traceback" not in err


@pytest.mark.server  # a real WHEP session over loopback
@pytest.mark.timeout(60)
async def test_a_dead_rtt_task_is_logged_and_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0
    real = rtt.timed_binding_request

    async def breaks_after_two(*args: Any) -> tuple[float, float] | None:
        nonlocal calls
        calls += 1
        if calls > 2:
            raise AttributeError("'Connection' object has no attribute '_nominated'")
        return await real(*args)

    monkeypatch.setattr(rtt, "timed_binding_request", breaks_after_two)
    pin_host_addresses(["127.0.0.1"])
    origin = WhepOrigin(encode_clip(seconds=2))
    await origin.start()
    try:
        sink = MemorySink()
        stop = asyncio.Event()
        task = asyncio.create_task(ProbeAgent(_config(origin.url), sink).run(stop))
        await asyncio.sleep(7.5)
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        await origin.stop()
        pin_host_addresses(None)
    connected = [s for s in sink.samples if s.state == ConnectionState.CONNECTED]
    assert any(s.rtt_ms is not None and s.rtt_error is None for s in connected)
    last = connected[-1]
    assert last.rtt_ms is None  # unknown, never the last good value for ever
    assert last.rtt_error is not None and "_nominated" in last.rtt_error
    assert (last.fps or 0) > 15  # the rest of the measuring goes on
    assert any("RTT checks stopped" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


@pytest.mark.timeout(30)
async def test_rtt_checks_end_when_cancelled_as_an_answer_lands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two real aioice agents on loopback; the RTT task is cancelled in the
    very loop turn its answer arrives (as a session closing while checks
    run). The cancel must end the task: a lost cancel left the task, and the
    session that waits for it, running for ever."""
    pin_host_addresses(["127.0.0.1"])
    a = aioice.Connection(ice_controlling=True)
    b = aioice.Connection(ice_controlling=False)
    try:
        await asyncio.gather(a.gather_candidates(), b.gather_candidates())
        for x, y in ((a, b), (b, a)):
            for c in y.local_candidates:
                await x.add_remote_candidate(c)
            await x.add_remote_candidate(None)
            x.remote_username, x.remote_password = y.local_username, y.local_password
        await asyncio.gather(a.connect(), b.connect())
        answers: list[float] = []
        task = asyncio.create_task(rtt.run_rtt_checks(a, answers.append, interval_s=0.05))
        original = rtc_seams._TimedTransaction.response_received
        cancelled = False

        def answered_then_cancelled(self: Any, message: Any, addr: Any) -> None:
            nonlocal cancelled
            original(self, message, addr)
            if not cancelled and self.future.done():
                cancelled = True
                task.cancel()  # in the same loop turn as the answer

        monkeypatch.setattr(rtc_seams._TimedTransaction, "response_received",
                            answered_then_cancelled)
        done, _ = await asyncio.wait([task], timeout=3)
        assert cancelled
        assert done and task.cancelled(), f"still checking after the cancel: {answers}"
    finally:
        await asyncio.gather(a.close(), b.close())
        pin_host_addresses(None)


def test_a_failure_handling_one_packet_is_logged_and_the_next_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Packets are handled in the socket callback: an exception there must not
    # reach asyncio's callback (which would log it without saying what failed)
    # nor stop the packets after it.
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    seen: list[int] = []

    def on_arrival(packet: RtpPacket, arrival_ms: int) -> None:
        if packet.sequence_number == 1:
            raise RuntimeError("meter bug")
        seen.append(packet.sequence_number)

    receiver = type("Receiver", (), {rtc_seams._ON_ARRIVAL: staticmethod(on_arrival)})()
    router = type("Router", (), {"route_rtp": staticmethod(lambda packet: receiver)})()
    dtls = type("Dtls", (), {"_rtp_header_extensions_map": HeaderExtensionsMap(),
                             "_rtp_router": router})()
    rtc_seams._tabled_extensions(dtls)  # as hooking its sockets does
    with caplog.at_level(logging.ERROR, logger="probes.rtc_seams"):
        for seq in (1, 2):
            rtc_seams._route_rtp(dtls, bytes(RtpPacket(sequence_number=seq).serialize()), 0)
    assert seen == [2]
    assert "handling a media packet failed" in caplog.text and "meter bug" in caplog.text
