"""Running ``qosmon`` as a user would: a separate process, in a folder of
the test's choosing, this checkout's code on the path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def run_cli(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qosmon.cli", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def start_serve(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """``qosmon [args]`` (a ``serve`` command line), once it listens: the
    process and the collector's URL. The caller stops it (``stop_serve``)."""
    proc = subprocess.Popen([sys.executable, "-m", "qosmon.cli", *args], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("collector listening on "):
            return proc, line.split()[-1]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate(timeout=10)
    raise AssertionError(f"collector did not start: {err}")


def stop_serve(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, then the process's stderr once it exited."""
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return err
