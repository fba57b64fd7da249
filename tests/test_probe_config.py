"""The probe's config file and command line: bad input is a clear error
(exit 2 through the CLI), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.config import ProbeConfig
from qosmon.cli import main as cli_main
from qosmon.configfile import ConfigError, load_model

GOOD = """
token = "s3cret-token"
collector_url = "http://127.0.0.1:8700"
spool_dir = "/tmp/spool"

[labels]
probe_id = "sg-1"
region = "SG"
isp = "singtel"

[[streams]]
show_id = "show-1"
stream_id = "main"
join = "janus"
url = "http://10.0.0.1:8088/janus"
mountpoint = 1
textroom_room = 1234
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "probe.toml"
    p.write_text(text)
    return p


def test_good_config_and_token_not_in_repr(tmp_path: Path) -> None:
    cfg = load_model(write(tmp_path, GOOD), ProbeConfig)
    assert cfg.labels.region == "SG" and cfg.streams[0].mountpoint == 1
    assert cfg.streams[0].chat is True and cfg.batch_interval_s == 1.0
    assert "s3cret" not in repr(cfg)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace('join = "janus"', 'join = "rtmp"'), "streams[0].join"),
        (lambda t: t.replace("mountpoint = 1\n", ""), "join = 'janus' needs mountpoint"),
        (lambda t: t + "\ncolour = 1\n", "colour: unknown key"),
        (lambda t: t.replace('region = "SG"', ""), "labels.region"),
        (lambda t: t.replace('token = "s3cret-token"', ""), "collector_url needs a token"),
        (lambda t: t.replace('url = "http://10', 'url = "ftp://10'), "streams[0].url"),
        (lambda t: t.replace('stream_id = "main"', 'stream_id = "main"\nchat_interval_s = 0'),
         "streams[0].chat_interval_s"),
        (lambda t: t + t[t.index("[[streams]]"):], "listed twice"),
        (lambda t: t.replace("[labels]", "[labels"), "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as err:
        load_model(write(tmp_path, edit(GOOD)), ProbeConfig)
    assert expected in str(err.value)
    assert "s3cret" not in str(err.value)


def test_cli_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, GOOD + "\nbogus = true\n")
    assert cli_main(["probe", "--config", str(p), "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "bogus: unknown key" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["probe", "--duration", "1"], "name exactly one of"),
        (["probe", "--janus", "http://127.0.0.1:1/janus"], "--janus needs --mountpoint"),
        (["probe", "--whep", "file:///x"], "streams[0].url"),
        (["probe", "--whep", "http://127.0.0.1:1/w", "--duration", "0"], "--duration must be"),
        (["probe", "--whep", "http://127.0.0.1:1/w", "--region", ""], "labels.region"),
        (["probe", "--whep", "http://127.0.0.1:1/w", "--video-codecs", "av1"],
         "streams[0].video_codecs[0]"),
        (["probe", "--whep", "http://127.0.0.1:1/w", "--token-env", "1BAD"],
         "streams[0].token_env"),
        (["probe", "--whep", "http://127.0.0.1:1/w", "--token-file", "/nonexistent/t"],
         "token: file /nonexistent/t: cannot read"),
        (["probe", "--whep", "http://127.0.0.1:1/w", "--apisecret-env", "X"],
         "apisecret_env / apisecret_file are for join = 'janus'"),
        (["probe", "--config", "x.toml", "--token-env", "X"], "not both"),
    ],
)
def test_cli_bad_one_off(argv: list[str], expected: str,
                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(argv) == 2
    assert expected in capsys.readouterr().err


@pytest.mark.timeout(30)
def test_cli_one_off_unreachable_writes_join_failed_lines(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    rc = cli_main(["probe", "--whep", "http://127.0.0.1:9/whep", "--duration", "2.5",
                   "--output", str(out), "--probe-id", "cli-1", "--region", "EU"])
    assert rc == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2
    # The first second may end before the refused connection is known.
    states = [x["state"] for x in lines]
    assert "join_failed" in states and set(states) <= {"new", "connecting", "join_failed"}
    assert all(x["error"] for x in lines if x["state"] == "join_failed")
    assert lines[0]["probe_id"] == "cli-1" and lines[0]["region"] == "EU"


@pytest.mark.parametrize("path", sorted(Path(__file__).parent.parent.glob("config/probe-*.toml")))
def test_sample_configs_are_valid(path: Path) -> None:
    cfg = load_model(path, ProbeConfig)
    assert cfg.streams
