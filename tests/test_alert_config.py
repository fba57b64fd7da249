"""Alerting config: the shipped example loads; bad files get clear errors;
``qosmon alert-test`` reports per route and sets its exit code."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from qosmon.alerting.alerter import Alerter, AlertingConfig
from qosmon.configfile import ConfigError, load_model
from qosmon.model import Cause
from tests.alertmanager_server import free_port, receiver

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_loads() -> None:
    cfg = load_model(ROOT / "config" / "alerting.toml", AlertingConfig)
    assert [r.name for r in cfg.routes] == ["oncall-webhook", "alertmanager"]
    assert cfg.pending_s == 2 and cfg.cool_off_s == 15 and cfg.group_wait_s == 0
    assert cfg.pending_by_cause == {Cause.HIGH_LATENCY: 10}


@pytest.mark.parametrize(("toml", "expected"), [
    ("pending = 3\n", "pending: unknown key"),
    ('[[routes]]\nname = "w"\nkind = "webhook"\nurl = "http://x"\n',
     "routes[0]: Value error, a webhook route needs secret (or secret_env) to sign its body"),
    ('[[routes]]\nname = "p"\nkind = "pagerduty"\n',
     "routes[0]: Value error, a pagerduty route needs routing_key (or routing_key_env)"),
    ('[[routes]]\nname = "s"\nkind = "slack"\nurl = "http://x"\nserves = ["ops"]\n',
     "routes[0].serves: Value error, unknown audience 'ops': use oncall or merchandising"),
    ('[[routes]]\nname = "s"\nkind = "sms"\nurl = "http://x"\n', "routes[0].kind: Input should"),
    ("group_wait_s = -1\n", "group_wait_s: Input should be greater than or equal to 0"),
    ('[[routes]]\nname = "a"\nkind = "alertmanager"\nurl = "http://x"\n'
     '[[routes]]\nname = "a"\nkind = "alertmanager"\nurl = "http://y"\n',
     "route name 'a' used twice"),
])
def test_bad_config_names_file_key_and_problem(tmp_path: Path, toml: str, expected: str) -> None:
    path = tmp_path / "alerting.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_model(path, AlertingConfig)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


async def test_missing_secret_env_is_a_config_error_at_start() -> None:
    cfg = AlertingConfig.model_validate({"routes": [{
        "name": "w", "kind": "webhook", "url": "http://127.0.0.1:9/x",
        "secret_env": "QOSMON_TEST_UNSET_SECRET"}]})
    os.environ.pop("QOSMON_TEST_UNSET_SECRET", None)
    with pytest.raises(ConfigError, match="QOSMON_TEST_UNSET_SECRET"):
        await Alerter(cfg).start()


async def run_cli(*args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QOSMON_TEST_SECRET": "hmac-secret-value"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qosmon.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_alert_test_command_reports_each_route(tmp_path: Path) -> None:
    dead = free_port()
    async with receiver() as rx:
        path = tmp_path / "alerting.toml"
        path.write_text(f"""
[[routes]]
name = "hook"
kind = "webhook"
url = "{rx.url}/hook"
secret_env = "QOSMON_TEST_SECRET"

[[routes]]
name = "pd"
kind = "pagerduty"
url = "{rx.url}/v2/enqueue"
routing_key = "pd-key-0123"

[[routes]]
name = "dead-slack"
kind = "slack"
url = "http://127.0.0.1:{dead}/services/T/B/SLACKSECRET"
serves = ["merchandising"]
""")
        code, out, err = await run_cli("alert-test", "--config", str(path))
    assert code == 1, err
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["hook"].endswith("OK") and lines["pd"].endswith("OK")
    assert f"FAILED: firing: cannot connect to http://127.0.0.1:{dead}" in lines["dead-slack"]
    assert "SLACKSECRET" not in out + err and "hmac-secret-value" not in out + err
    sent = [(r.path, r.json()) for r in rx.requests]
    # Routes are tested concurrently: only the order within a route is fixed.
    assert sorted(p for p, _ in sent) == ["/hook", "/hook", "/v2/enqueue", "/v2/enqueue"]
    hooks = [b for p, b in sent if p == "/hook"]
    assert [b["status"] for b in hooks] == ["firing", "resolved"]
    pds = [b["event_action"] for p, b in sent if p == "/v2/enqueue"]
    assert pds == ["trigger", "resolve"]


async def test_alert_test_command_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "alerting.toml"
    path.write_text("[[routes]]\nname = 1\n")
    code, _, err = await run_cli("alert-test", "--config", str(path))
    assert code == 2
    assert f"{path}: invalid" in err and "routes[0].name" in err and "Traceback" not in err
