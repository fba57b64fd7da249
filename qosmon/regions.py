"""The viewer regions qosmon knows by name, and the time zone each lives in.

Regions are free labels (whatever the probes and the commerce feed send);
this table only gives well-known codes a sensible local time zone, so that
"every Friday evening" means the viewers' evening. A deployment sets its own
with ``[regions.zones]`` / ``--zone REGION=Area/City``; anything unknown falls
back to UTC, which is said on the page rather than guessed.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qosmon.errors import ConfigError


class ZoneError(ConfigError):
    """A region's time zone setting cannot be used."""


# code -> IANA zone. Several spellings of the US coasts are in use.
REGION_ZONES: dict[str, str] = {
    "SG": "Asia/Singapore",
    "ID": "Asia/Jakarta",
    "TH": "Asia/Bangkok",
    "MY": "Asia/Kuala_Lumpur",
    "PH": "Asia/Manila",
    "VN": "Asia/Ho_Chi_Minh",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "CN": "Asia/Shanghai",
    "HK": "Asia/Hong_Kong",
    "TW": "Asia/Taipei",
    "AE": "Asia/Dubai",
    "SA": "Asia/Riyadh",
    "DE": "Europe/Berlin",
    "NL": "Europe/Amsterdam",
    "FR": "Europe/Paris",
    "ES": "Europe/Madrid",
    "IT": "Europe/Rome",
    "PL": "Europe/Warsaw",
    "UK": "Europe/London",
    "GB": "Europe/London",
    "US-W": "America/Los_Angeles",
    "US-West": "America/Los_Angeles",
    "US-E": "America/New_York",
    "US-East": "America/New_York",
    "BR": "America/Sao_Paulo",
    "MX": "America/Mexico_City",
    "AU": "Australia/Sydney",
}


def parse_zones(pairs: list[str]) -> dict[str, str]:
    """``["TH=Asia/Bangkok", ...]`` -> mapping, each zone checked."""
    out: dict[str, str] = {}
    for pair in pairs:
        region, sep, zone = pair.partition("=")
        if not sep or not region or not zone:
            raise ZoneError(f"zone {pair!r}: expected REGION=Area/City")
        check_zone(zone)
        out[region] = zone
    return out


def check_zone(zone: str) -> None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ZoneError(f"unknown time zone {zone!r}") from e


def region_zone(region: str, overrides: dict[str, str] | None = None) -> str:
    """The IANA zone of a region: the deployment's own setting, the table's,
    else UTC."""
    if overrides and region in overrides:
        return overrides[region]
    return REGION_ZONES.get(region, "UTC")
