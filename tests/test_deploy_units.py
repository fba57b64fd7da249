"""The systemd units in deploy/: valid for systemd itself
(``systemd-analyze verify``), hardened as systemd documents it, and not
restarted forever on a config error (exit code 2)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = ["qosmon-probe.service", "qosmon-collector.service"]
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (Debian package: systemd)")


def _settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.replace("\\\n", " ").splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).strip())
    return out


def _installed_copy(unit: str, tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's ``qosmon``,
    so verify can check the command exists and is executable."""
    exe = Path(sys.executable).parent / "qosmon"
    if not exe.exists():
        pytest.skip(f"no qosmon console script next to {sys.executable}")
    path = tmp_path / unit
    path.write_text((DEPLOY / unit).read_text().replace("/opt/qosmon/bin/qosmon", str(exe)))
    return path


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies(unit: str, tmp_path: Path) -> None:
    assert ANALYZE is not None
    proc = subprocess.run([ANALYZE, "verify", "--man=no", str(_installed_copy(unit, tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_unit_exposure_is_low(unit: str, tmp_path: Path) -> None:
    assert ANALYZE is not None
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(_installed_copy(unit, tmp_path))],
        capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert m is not None, proc.stdout + proc.stderr
    # 0 is fully locked down, 10 unprotected; systemd calls < 2 "OK".
    assert float(m.group(1)) < 2.0, proc.stdout


@pytest.mark.parametrize("unit", UNITS)
def test_unit_is_hardened_and_takes_its_token_as_a_credential(unit: str) -> None:
    s = _settings((DEPLOY / unit).read_text())
    assert s["DynamicUser"] == ["yes"] or "User" in s
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["CapabilityBoundingSet"] == [""] and s["AmbientCapabilities"] == [""]
    assert s["RestartPreventExitStatus"] == ["2"]
    assert s["LoadCredential"], "tokens come in as systemd credentials"
    assert s["StateDirectory"]
