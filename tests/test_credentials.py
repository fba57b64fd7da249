"""Tokens named in config files instead of written there: from the
environment (``*_env``) or a file (``*_file``, e.g. a systemd credential),
for probe and collector; errors name the key and never the token."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from probes.config import ProbeConfig
from qosmon.collector.config import CollectorConfig

TOKEN = "from-a-file-0123456789abcdef"
STREAM = {"show_id": "s", "stream_id": "m", "join": "whep", "url": "http://127.0.0.1:1/w"}


def probe(**kw: object) -> ProbeConfig:
    return ProbeConfig.model_validate({"labels": {"probe_id": "p1", "region": "SG"},
                                       "collector_url": "http://127.0.0.1:1",
                                       "streams": [STREAM], **kw})


def test_probe_token_from_a_credentials_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "probe-token").write_text(TOKEN + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert probe(token_file="${CREDENTIALS_DIRECTORY}/probe-token").token == TOKEN
    monkeypatch.setenv("QOSMON_PROBE_TOKEN", TOKEN)
    assert probe(token_env="QOSMON_PROBE_TOKEN").token == TOKEN
    with pytest.raises(ValidationError, match="give one of token, token_env, not several"):
        probe(token="x" * 20, token_env="QOSMON_PROBE_TOKEN")
    with pytest.raises(ValidationError, match="environment variable NOPE_NOT_SET is not set"):
        probe(token_env="NOPE_NOT_SET")
    with pytest.raises(ValidationError, match=r"token_file: .*missing: No such file"):
        probe(token_file=str(tmp_path / "missing"))


def test_collector_tokens_from_files_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "feed").write_text("feed-token-from-file-0123456789")
    monkeypatch.setenv("QOSMON_P1", TOKEN)
    cfg = CollectorConfig.model_validate({
        "feed_tokens_file": [str(tmp_path / "feed")],
        "probes": [{"probe_id": "p1", "token_env": "QOSMON_P1",
                    "labels": {"region": "SG"}, "shows": ["s1"]}],
    })
    assert [t.get_secret_value() for t in cfg.feed_tokens] == ["feed-token-from-file-0123456789"]
    assert cfg.probes[0].secret.get_secret_value() == TOKEN
    assert TOKEN not in repr(cfg)
    (tmp_path / "short").write_text("short")
    with pytest.raises(ValidationError, match="token_file must have 16 to 512 characters"):
        CollectorConfig.model_validate(
            {"probes": [{"probe_id": "p1", "token_file": str(tmp_path / "short")}]})
    with pytest.raises(ValidationError, match="needs token, token_env or token_file"):
        CollectorConfig.model_validate({"probes": [{"probe_id": "p1"}]})
