"""Scenario files: the shipped one loads, and each kind of mistake gets a
message naming the file, the key and the problem."""

from pathlib import Path

import pytest

from qosmon.cli import main
from qosmon.configfile import ConfigError
from qosmon.demo.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "config" / "demo-scenario.toml"


def test_shipped_scenario_loads() -> None:
    sc = load_scenario(SHIPPED)
    assert len(sc.regions) >= 3
    assert all(len(r.probes) >= 1 for r in sc.regions)
    assert {f.kind.value for f in sc.faults} >= {"bandwidth", "outage", "chat_stall", "sell_out"}


GOOD = SHIPPED.read_text()

BAD_CASES = [
    # (edit applied to the shipped file, text expected in the error)
    (lambda s: s.replace('duration_s = 180', 'duration_s = "long"'),
     "show.duration_s: Input should be a valid number"),
    (lambda s: s.replace('region = "DE"\nat_s = 70', 'region = "XX"\nat_s = 70'),
     "faults[1].region: unknown region 'XX'"),
    (lambda s: s.replace('rate_kbps = 1000', 'rate_kbs = 1000'),
     "faults[0].rate_kbs: unknown key"),
    (lambda s: s.replace('kind = "outage"', 'kind = "meteor"'),
     "faults[1].kind: Input should be"),
    (lambda s: s.replace('warehouses = ["WH-DE-FRA"]', 'warehouses = ["WH-NOWHERE"]'),
     "regions[2].warehouses: unknown warehouse 'WH-NOWHERE'"),
    (lambda s: s.replace('sku = "SKU-EARBUDS"\nwarehouse', 'sku = "SKU-NONE"\nwarehouse'),
     "faults[3].sku: unknown sku 'SKU-NONE'"),
    (lambda s: s.replace('rate_kbps = 1000\n', ''),
     "faults[0].rate_kbps: required for kind 'bandwidth'"),
    (lambda s: s + "\n[show\n", "not valid TOML"),
]


@pytest.mark.parametrize(("edit", "expected"), BAD_CASES)
def test_bad_scenario_names_file_key_and_problem(tmp_path: Path, edit, expected: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(GOOD))
    with pytest.raises(ConfigError) as err:
        load_scenario(bad)
    assert str(bad) in str(err.value)
    assert expected in str(err.value)


def test_cli_reports_bad_scenario_without_traceback(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('region = "DE"\nat_s = 70', 'region = "XX"\nat_s = 70'))
    assert main(["demo", "--scenario", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "faults[1].region: unknown region 'XX'" in err and "Traceback" not in err


def test_cli_reports_missing_scenario(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["demo", "--scenario", str(missing), "--out", str(tmp_path)]) == 2
    assert f"{missing}: cannot read" in capsys.readouterr().err


def test_cli_store_problem_is_a_message_not_a_traceback(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    # The out dir cannot be created under a file: the demo must say so.
    code = main(["demo", "--scenario", str(SHIPPED), "--out", str(blocker / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert str(blocker) in err
