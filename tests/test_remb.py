"""The probe throttles its REMBs as a browser's receiver does."""

from __future__ import annotations

from probes.remb import RembThrottle


def test_the_first_estimate_goes_out() -> None:
    assert RembThrottle().send(500_000, 1000)


def test_estimates_that_hold_or_rise_go_out_every_200_ms_at_most() -> None:
    throttle = RembThrottle()
    sent = [ms for ms in range(0, 1000, 10) if throttle.send(600_000 + ms, ms)]
    assert sent == [0, 200, 400, 600, 800]


def test_a_drop_of_more_than_3_percent_goes_out_at_once() -> None:
    throttle = RembThrottle()
    assert throttle.send(1_000_000, 0)
    assert not throttle.send(980_000, 10)  # 2 % lower: waits for the interval
    assert throttle.send(960_000, 20)  # 4 % lower: at once
    assert not throttle.send(960_000, 30)
    assert throttle.send(900_000, 40)  # lower again than the last sent
    assert throttle.send(900_000, 240)


def test_a_flood_of_overuse_estimates_becomes_a_few_packets() -> None:
    # aiortc's estimator answers on every packet while it detects overuse.
    throttle = RembThrottle()
    sent = sum(throttle.send(700_000, ms) for ms in range(0, 2000, 2))
    assert sent == 10
