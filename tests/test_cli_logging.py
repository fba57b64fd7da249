"""What a command's log looks like on stderr: libraries quiet by default,
``-v`` for qosmon's debug, ``-vv`` for everyone's, JSON lines on request,
and never a token."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from qosmon.logs import configure_logging
from tests.cli_run import start_serve, stop_serve

PROBE_TOKEN = "probe-token-that-must-stay-secret-1"
FEED_TOKEN = "feed-token-that-must-stay-secret-22"
WRONG_TOKEN = "a-wrong-token-that-must-stay-secret"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers),
             {n: logging.getLogger(n).level for n in ("qosmon", "probes")})
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("verbosity, shown", [
    (0, {"qosmon info"}),
    (1, {"qosmon info", "qosmon debug", "probes debug"}),
    (2, {"qosmon info", "qosmon debug", "probes debug", "aioice info", "aiohttp debug"}),
])
def test_levels_by_verbosity(restore_logging: None, verbosity: int, shown: set[str]) -> None:
    out = io.StringIO()
    configure_logging(verbosity, stream=out)
    logging.getLogger("qosmon.live").info("qosmon info")
    logging.getLogger("qosmon.collector.request").debug("qosmon debug")
    logging.getLogger("probes.viewer").debug("probes debug")
    logging.getLogger("aioice.ice").info("aioice info")
    logging.getLogger("aiohttp.access").debug("aiohttp debug")
    logging.getLogger("aiortc.rtcpeerconnection").warning("aiortc warning")
    lines = out.getvalue().splitlines()
    candidates = {"qosmon info", "qosmon debug", "probes debug", "aioice info", "aiohttp debug"}
    assert {m for m in candidates if any(ln.endswith(m) for ln in lines)} == shown
    # A library's warning always gets through.
    assert any(ln.endswith("aiortc warning") for ln in lines)


def test_json_lines(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(0, "json", stream=out)
    log = logging.getLogger("qosmon.collector")
    log.info("listening on %s", "http://127.0.0.1:1")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = (json.loads(ln) for ln in out.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "qosmon.collector"
    assert first["message"] == "listening on http://127.0.0.1:1"
    assert first["ts"].endswith("+00:00")
    assert second["message"] == "failed" and "ValueError: boom" in second["exc"]


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'port = 0\nstore = "q.db"\nfeed_tokens = ["{FEED_TOKEN}"]\n'
        f'[[probes]]\nprobe_id = "p1"\ntoken = "{PROBE_TOKEN}"\n'
        "[live]\nenabled = false\n[retention]\nenabled = false\n"
    )
    return cfg


def _post(url: str, token: str) -> int:
    req = urllib.request.Request(
        f"{url}/api/v1/samples", data=b"{}", method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("flags, config_format", [
    ([], None), (["-v"], None), (["-vv"], None), (["--log-format", "json", "-v"], None),
    (["-v"], "json"),
])
def test_serve_log_on_stderr(tmp_path: Path, flags: list[str], config_format: str | None) -> None:
    cfg = _config(tmp_path)
    if config_format is not None:
        cfg.write_text(f'log_format = "{config_format}"\n' + cfg.read_text())
    proc, url = start_serve([*flags, "serve", "--config", "c.toml"], cwd=tmp_path)
    try:
        assert _post(url, WRONG_TOKEN) == 401
        assert _post(url, PROBE_TOKEN) == 400
    finally:
        err = stop_serve(proc)
    lines = err.splitlines()
    if "json" in flags or config_format == "json":
        records = [json.loads(ln) for ln in lines]
        messages = [r["message"] for r in records]
        assert {r["level"] for r in records} <= {"DEBUG", "INFO", "WARNING", "ERROR"}
    else:
        messages = lines
    assert any("collector listening on" in m for m in messages)
    rejects = [m for m in messages if "/api/v1/samples -> 40" in m]
    library_debug = [m for m in messages if "Using selector" in m]  # asyncio's, at start
    if flags == []:
        assert not rejects and not library_debug
    elif "-vv" in flags:
        assert len(rejects) == 2 and library_debug
    else:
        assert len(rejects) == 2 and not library_debug
    for secret in (PROBE_TOKEN, FEED_TOKEN, WRONG_TOKEN):
        assert secret not in err
