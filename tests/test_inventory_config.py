"""config/inventory.toml and the errors a bad one gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from qosmon.configfile import ConfigError, load_model
from qosmon.inventory import InventoryConfig

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "inventory.toml"


def test_example_config_loads_and_matches_the_defaults() -> None:
    assert load_model(EXAMPLE, InventoryConfig) == InventoryConfig()


def test_partial_config_keeps_other_defaults(tmp_path: Path) -> None:
    p = tmp_path / "inv.toml"
    p.write_text('gap_level = "hold"\nstale_after_s = 10\n'
                 '[safety_weeks.planned_show]\nA = 5\nB = 4.5\nC = 1\n'
                 '[daily_units]\n"SKU-1" = 40\n')
    cfg = load_model(p, InventoryConfig)
    assert cfg.gap_level == "hold" and cfg.stale_after_s == 10
    assert cfg.safety_weeks.planned_show.for_class("B") == 4.5
    assert cfg.safety_weeks.everyday.for_class("A") == 3.0
    assert cfg.daily_units == {"SKU-1": 40}
    assert cfg.red_at_x == 0.5


def test_time_form_and_lag_check_switch_off_with_zero(tmp_path: Path) -> None:
    p = tmp_path / "inv.toml"
    p.write_text("yellow_minutes_left = 0\nred_minutes_left = 20\nmax_sync_lag_s = 0\n")
    cfg = load_model(p, InventoryConfig)
    assert (cfg.yellow_minutes_left, cfg.red_minutes_left, cfg.max_sync_lag_s) == (0, 20, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("red_at_x = 1.5\n", "bands must satisfy red_at_x <= orange_at_x"),
        ("yellow_at_x = 4\n", "bands must satisfy"),
        ("red_minutes_left = 90\n", "red_minutes_left must not exceed yellow_minutes_left"),
        ('gap_level = "orange"\n', "gap_level: Input should be 'yellow', 'green' or 'hold'"),
        ("red_minutes_left = -1\n", "red_minutes_left: Input should be greater than or equal to 0"),
        ("stale_after_s = 0\n", "stale_after_s: Input should be greater than 0"),
        ("traffic_weight = 1.5\n", "traffic_weight: Input should be less than or equal to 1"),
        ("stale_after = 30\n", "stale_after: unknown key"),
        ("[safety_weeks.everyday]\nA = 3\nB = 2\n", "safety_weeks.everyday.C: Field required"),
        ('[daily_units]\n"X" = -1\n', "daily_units must not be negative"),
    ],
)
def test_invalid_config_names_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "inventory.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_model(p, InventoryConfig)
    assert str(p) in str(err.value)
    assert message in str(err.value)
