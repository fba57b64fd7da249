"""One store URL parser and default for every command: plain paths, the two
``sqlite://`` forms, read-only commands that refuse to create a store, and
the README's commands run as written."""

from __future__ import annotations

import re
import shlex
import sqlite3
import time
from pathlib import Path

import pytest

from qosmon.errors import ConfigError, NoSuchStore, StoreError, StoreURLError
from qosmon.model import ProbeSample, Show
from qosmon.store import open_store
from qosmon.store.url import DEFAULT_STORE_URL, InfluxURL, SqliteURL, parse_store_url
from tests.cli_run import REPO, run_cli, start_serve, stop_serve

SHOW = "s-1"


def _make_store(path: Path, show_id: str = SHOW) -> None:
    """A small show written through the store API, as a collector would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(str(path))
    t0 = time.time() - 120
    try:
        store.put_show(Show(show_id=show_id, title="Test show", start_ts=t0, end_ts=t0 + 60,
                            regions=["ID"]))
        store.write_probe_batch("p1/b1", [
            ProbeSample(ts=t0 + i, show_id=show_id, stream_id="main", probe_id="p1",
                        region="ID", state="connected", rtt_ms=40.0, fps=30.0,
                        bitrate_kbps=800.0, packets_expected=100, packets_received=100)
            for i in range(60)
        ])
    finally:
        store.close()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- the parser ---------------------------------------------------------------

def test_paths_and_sqlite_urls_name_the_same_files() -> None:
    assert parse_store_url("qosmon.db") == SqliteURL(Path("qosmon.db"))
    assert parse_store_url("data/q.db") == SqliteURL(Path("data/q.db"))
    assert parse_store_url("/var/lib/q.db") == SqliteURL(Path("/var/lib/q.db"))
    # Three slashes: the scheme's two, then an absolute path.
    assert parse_store_url("sqlite:///var/lib/q.db") == SqliteURL(Path("/var/lib/q.db"))
    # Two: the path is relative to the current directory.
    assert parse_store_url("sqlite://data/q.db") == SqliteURL(Path("data/q.db"))
    assert parse_store_url("sqlite://q.db?synchronous=normal") == SqliteURL(Path("q.db"), "NORMAL")
    assert parse_store_url("~/q.db") == SqliteURL(Path.home() / "q.db")
    assert parse_store_url(DEFAULT_STORE_URL) == SqliteURL(Path("qosmon.db"))


def test_influx_url_and_its_side_store() -> None:
    loc = parse_store_url("influxs://ts.example:8443/qos?org=o&token_env=T&side=data/side.db")
    assert loc == InfluxURL(server="https://ts.example:8443", bucket="qos", org="o",
                            token_env="T", side=Path("data/side.db"))


@pytest.mark.parametrize("bad, says", [
    ("", "empty"),
    ("sqlite:q.db", "sqlite://"),
    ("sqlite://", "no file path"),
    ("sqlite://q.db?synchronous=sometimes", "synchronous"),
    ("sqlite://q.db?colour=red", "colour"),
    ("ftp://host/x", "unknown scheme"),
    ("influx://:8086/b", "no host"),
    ("influx://h:8086/", "no bucket"),
    ("influx://h:99999/b", "bad port"),
])
def test_bad_urls_say_what_is_wrong(bad: str, says: str) -> None:
    with pytest.raises(StoreURLError, match=re.escape(says)):
        parse_store_url(bad)


def test_errors_are_also_the_matching_builtins(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_store(str(tmp_path / "none.db"), read_only=True)
    with pytest.raises(ValueError):
        parse_store_url("ftp://x")
    assert issubclass(NoSuchStore, StoreError) and issubclass(StoreError, OSError)
    assert issubclass(StoreURLError, ConfigError)


def test_read_only_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    _make_store(db)
    store = open_store(str(db), read_only=True)
    try:
        assert store.get_show(SHOW) is not None
        assert len(store.probe_samples(SHOW)) == 60
        with pytest.raises(StoreError, match="read-only"):
            store.put_show(Show(show_id="other", start_ts=1.0))
    finally:
        store.close()
    assert open_store(str(db)).get_show("other") is None


def test_read_only_reads_a_store_from_before_a_table_existed(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _make_store(db)
    with sqlite3.connect(db) as conn:  # as written before show summaries were stored
        conn.execute("DROP TABLE show_summaries")
    store = open_store(str(db), read_only=True)
    try:
        assert store.show_summaries() == []
        assert store.get_show(SHOW) is not None
    finally:
        store.close()
    with sqlite3.connect(db) as conn:  # and the file was not changed
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "show_summaries" not in tables and "shows" in tables
    proc = run_cli(["history", "--out", "h", "--store", "old.db"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "h" / "history.html").is_file()


def test_read_only_open_of_a_file_that_is_no_store(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database " * 100)
    with pytest.raises(StoreError, match="cannot open"):
        open_store(str(junk), read_only=True)
    with pytest.raises(StoreURLError, match="is a folder"):
        open_store(str(tmp_path), read_only=True)


# --- every command with --store -------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["report", "--show", "x", "--out", "r"],
    ["report", "--show", "x", "--out", "r", "--store", "sqlite://sub/q.db"],
    ["diagnose", "--show", "x"],
    ["diagnose", "--show", "x", "--save", "--store", "q.db"],
    ["history", "--out", "h"],
])
def test_reading_commands_in_an_empty_folder_create_nothing(tmp_path: Path,
                                                             argv: list[str]) -> None:
    proc = run_cli(argv, cwd=tmp_path)
    store = argv[argv.index("--store") + 1] if "--store" in argv else DEFAULT_STORE_URL
    path = parse_store_url(store)
    assert isinstance(path, SqliteURL)
    assert proc.returncode == 2, proc.stderr
    assert f"no such store: {path.path}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _files(tmp_path) == []


@pytest.mark.parametrize("command", [
    ["report", "--show", "x", "--out", "r"], ["diagnose", "--show", "x"], ["demo"],
    ["serve", "--config", "c.toml"], ["history", "--out", "h"],
])
def test_a_bad_store_url_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    proc = run_cli([*command, "--store", "sqlite:q.db"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "--store" in proc.stderr and "sqlite://" in proc.stderr
    assert _files(tmp_path) == []


def test_report_and_diagnose_read_a_store_given_as_a_plain_path(tmp_path: Path) -> None:
    _make_store(tmp_path / "data" / "q.db")
    proc = run_cli(["report", "--show", SHOW, "--out", "r", "--store", "data/q.db"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / f"{SHOW}.html").is_file()
    proc = run_cli(["diagnose", "--show", SHOW, "--store", "sqlite://data/q.db"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"show {SHOW}:" in proc.stdout
    proc = run_cli(["history", "--out", "h", "--store", "data/q.db"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "h" / "history.html").is_file()


def test_report_default_store_is_qosmon_db_here(tmp_path: Path) -> None:
    _make_store(tmp_path / DEFAULT_STORE_URL)
    proc = run_cli(["report", "--show", SHOW, "--out", "."], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / f"{SHOW}.html").is_file()


@pytest.mark.parametrize("store_arg, created", [
    ([], "from-config.db"),
    (["--store", "sqlite://override.db"], "override.db"),
])
def test_serve_creates_its_store_relative_to_where_it_runs(
    tmp_path: Path, store_arg: list[str], created: str
) -> None:
    (tmp_path / "c.toml").write_text(
        'port = 0\nstore = "from-config.db"\n[live]\nenabled = false\n'
        "[retention]\nenabled = false\n"
    )
    proc, _url = start_serve(["serve", "--config", "c.toml", *store_arg], cwd=tmp_path)
    stop_serve(proc)
    assert (tmp_path / created).is_file()
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [created]


def test_serve_refuses_a_bad_store_in_its_config(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('store = "sqlite:q.db"\n')
    proc = run_cli(["serve", "--config", "c.toml"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "c.toml" in proc.stderr and "store" in proc.stderr and "sqlite://" in proc.stderr


def test_demo_run_show_ids_are_apart() -> None:
    from qosmon.demo.command import run_show_id

    a = run_show_id("demo-autumn-gadgets", 1_800_000_000.0)
    assert a == "demo-autumn-gadgets-20270115T080000"
    assert run_show_id("x" * 64, 0.0).endswith("-19700101T000000")
    assert len(run_show_id("x" * 64, 0.0)) == 64


# --- the README's commands, as written ----------------------------------------------

def _readme_commands(name: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = [ln.split("#")[0].strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln.startswith(f"qosmon {name} ") and "--store" in ln]


@pytest.mark.parametrize("name", ["report", "diagnose"])
def test_readme_store_commands_work_as_written(tmp_path: Path, name: str) -> None:
    commands = _readme_commands(name)
    assert len(commands) >= 2  # the demo's and the after-a-show one
    for line in commands:
        argv = shlex.split(line.replace(" ID ", f" {SHOW} "))[1:]
        store = argv[argv.index("--store") + 1]
        loc = parse_store_url(store)
        assert isinstance(loc, SqliteURL) and not loc.path.is_absolute(), line
        cwd = tmp_path / f"run{commands.index(line)}"
        _make_store(cwd / loc.path)
        proc = run_cli(argv, cwd=cwd)
        assert proc.returncode == 0, (line, proc.stderr)
        if name == "report":
            out = Path(argv[argv.index("--out") + 1])
            assert (cwd / out / f"{SHOW}.html").is_file(), line
        else:
            assert f"show {SHOW}:" in proc.stdout
