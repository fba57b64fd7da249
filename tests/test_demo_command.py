"""``qosmon demo`` as a user runs it: its store under ``--out``, each run a
show of its own there that ``report`` and ``diagnose`` read back, and a
terminal free of the libraries' INFO lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qosmon.store import open_store
from tests.cli_run import run_cli

SHORT = Path(__file__).parent / "scenarios" / "short.toml"

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.mark.timeout(240)
def test_demo_keeps_its_show_in_the_out_store_and_the_terminal_quiet(tmp_path: Path) -> None:
    proc = run_cli(["demo", "--scenario", str(SHORT), "--duration", "20", "--out", "out"],
                   cwd=tmp_path, timeout=200)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"Store: out/qosmon\.db \(show (e2e-short-\d{8}T\d{6})\)", last)
    assert m, last
    show_id = m.group(1)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.db")) == ["qosmon.db"]
    store = open_store(str(tmp_path / "out" / "qosmon.db"), read_only=True)
    try:
        assert [s.show_id for s in store.list_shows()] == [show_id]
        assert store.probe_samples(show_id)
    finally:
        store.close()
    # No library logs below WARNING reach the terminal.
    noisy = [ln for ln in proc.stderr.splitlines()
             if re.search(r" (DEBUG|INFO) (aioice|aiortc|aiohttp|asyncio)", ln)]
    assert not noisy, noisy[:5]
    rep = run_cli(["report", "--show", show_id, "--store", "out/qosmon.db", "--out", "again"],
                  cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "again" / f"{show_id}.html").is_file()
    diag = run_cli(["diagnose", "--show", show_id, "--store", "out/qosmon.db"], cwd=tmp_path)
    assert diag.returncode == 0, diag.stderr
    assert diag.stdout.startswith(f"show {show_id}:")
    # A second run is a show of its own in the same store, and the history
    # page next to the reports has both, as the README says.
    again = run_cli(["demo", "--scenario", str(SHORT), "--duration", "20", "--out", "out"],
                    cwd=tmp_path, timeout=200)
    assert again.returncode == 0, again.stderr
    second = re.fullmatch(r"Store: out/qosmon\.db \(show (e2e-short-\d{8}T\d{6})\)",
                          again.stdout.strip().splitlines()[-1])
    assert second and second.group(1) != show_id
    assert "History of every run in this folder's store:" in again.stdout
    history = json.loads((tmp_path / "out" / "history.json").read_text(encoding="utf-8"))
    assert [s["show_id"] for s in history["shows"]] == [show_id, second.group(1)]
    hist = run_cli(["history", "--store", "out/qosmon.db", "--out", "h"], cwd=tmp_path)
    assert hist.returncode == 0, hist.stderr
    assert json.loads((tmp_path / "h" / "history.json").read_text())["shows"] == history["shows"]
