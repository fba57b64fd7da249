"""A real ``qosmon serve`` process on loopback for tests and benchmarks:
written config, started, its URL read from its first line, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class CollectorProcess:
    def __init__(self, config: Path, env: dict[str, str] | None = None,
                 preexec: Callable[[], None] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qosmon.cli", "serve", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            preexec_fn=preexec,  # only resource limits: no locks taken in the child
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("collector listening on "):
                self.url = line.split()[-1]
                return
            if not line and self.proc.poll() is not None:
                break
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
