"""A real ``qosmon serve`` process on loopback for tests and benchmarks:
written config, started, its URL read from its first line, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def launch_qosmon(args: list[str], env: dict[str, str] | None = None,
                  stderr: Any = subprocess.PIPE, cwd: Path | None = None,
                  preexec: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    """Exec ``qosmon [args]`` with this checkout importable, stdout piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "qosmon.cli", *args],
        stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        preexec_fn=preexec,  # only resource limits: no locks taken in the child
    )


def listening_url(proc: subprocess.Popen[str], timeout_s: float) -> str | None:
    """The URL from the process's "collector listening on" line, or None
    when it exits or does not say it within ``timeout_s``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("collector listening on "):
            return line.split()[-1]
        if not line and proc.poll() is not None:
            break
    return None


def live_collector_config(tmp: Path, tokens: dict[str, str], feed: str,
                          host: str = "127.0.0.1") -> Path:
    """A collector running live diagnosis on SQLite, no alerting: its config
    file, with one token per probe id and ``feed`` for business data."""
    cfg = tmp / "collector.toml"
    cfg.write_text(
        f'host = "{host}"\nport = 0\nstore = "sqlite:///{tmp / "q.db"}"\n'
        f'feed_tokens = ["{feed}"]\n'
        "[rate_limit]\nrequests_per_s = 1000\nburst = 1000\n"
        f'[live]\ndiagnosis_config = "{REPO / "config" / "diagnosis.toml"}"\n'
        f'report_dir = "{tmp / "reports"}"\n'
        + "".join(f'[[probes]]\nprobe_id = "{p}"\ntoken = "{t}"\n' for p, t in tokens.items())
    )
    return cfg


class CollectorProcess:
    def __init__(self, config: Path, env: dict[str, str] | None = None,
                 preexec: Callable[[], None] | None = None) -> None:
        self.proc = launch_qosmon(["serve", "--config", str(config)], env, preexec=preexec)
        url = listening_url(self.proc, 30)
        if url is not None:
            self.url = url
            return
        self.proc.kill()
        _, err = self.proc.communicate(timeout=10)
        raise AssertionError(f"collector did not start: {err}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> str:
        """Stop it (SIGTERM, then SIGKILL); returns what it wrote to stderr."""
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
        return err
