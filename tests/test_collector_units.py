"""The collector's pure parts, without an event loop: tokens, rate limits,
fleet view, the example config."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from qosmon.collector.auth import RateLimiter, TokenRegistry, bearer_token
from qosmon.collector.config import CollectorConfig
from qosmon.collector.fleet import Fleet
from qosmon.configfile import ConfigError, load_model
from qosmon.model import Heartbeat, ProbeLabels

ROOT = Path(__file__).resolve().parents[1]


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc  ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_token_registry() -> None:
    reg = TokenRegistry([("p1", SecretStr("t" * 20))], [SecretStr("f" * 20)], [])
    assert reg.probe_for("t" * 20) == "p1"
    assert reg.probe_for("t" * 19) is None and reg.probe_for("f" * 20) is None
    assert reg.is_feed("f" * 20) and not reg.is_feed("t" * 20)
    assert reg.reads_open


def test_rate_limiter_refills_with_time() -> None:
    lim = RateLimiter(requests_per_s=2.0, burst=2)
    key = b"k"
    assert lim.acquire(key, 0.0) is None
    assert lim.acquire(key, 0.0) is None
    wait = lim.acquire(key, 0.0)
    assert wait == pytest.approx(0.5)
    assert lim.acquire(key, 0.5) is None
    assert lim.acquire(b"other", 0.5) is None


def test_fleet_offset_is_robust_to_one_outlier() -> None:
    fleet = Fleet(["p1"], heartbeat_interval_s=10.0)
    labels = ProbeLabels(probe_id="p1", region="ID")
    for i in range(10):
        fleet.on_heartbeat(Heartbeat(probe=labels, ts=1000.0 + i * 10), 1002.0 + i * 10)
    # One batch retried long after it was sent.
    fleet.on_batch("p1", sent_ts=900.0, received_ts=1100.0, n_samples=5, dropped=1)
    view = fleet.view(now=1100.0)[0]
    assert view["clock_offset_ms"] == pytest.approx(2000.0)
    assert view["up"] is True and view["samples_received"] == 5
    assert fleet.view(now=1092.0 + 31.0)[0]["up"] is False


def test_example_config_loads() -> None:
    cfg = load_model(ROOT / "config" / "collector.toml", CollectorConfig)
    assert cfg.host == "127.0.0.1" and len(cfg.probes) == 2
    assert "change-me" not in repr(cfg)  # secrets stay out of reprs


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[[probes]]\nprobe_id = "a"\ntoken = "aaaaaaaaaaaaaaaaaaaa"\n'
                 '[[probes]]\nprobe_id = "a"\ntoken = "bbbbbbbbbbbbbbbbbbbb"\n')
    with pytest.raises(ConfigError, match="probe_id listed twice: a"):
        load_model(p, CollectorConfig)
    p.write_text("[retention]\nraw_days = 30\nkeep_days = 7\n")
    with pytest.raises(ConfigError, match="keep_days must be at least raw_days"):
        load_model(p, CollectorConfig)
