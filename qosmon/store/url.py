"""Where a store is: the one parser for the collector config's ``store`` and
every command's ``--store``, and the one default.

Accepted forms (relative paths are relative to the current directory, in a
config file as on the command line):

- ``PATH``: a plain filesystem path, an embedded (SQLite) store file;
- ``sqlite:///abs/path.db``: the same with an absolute path (three slashes:
  the scheme's two, then the path's own);
- ``sqlite://rel/path.db``: the same with a relative path;
- ``?synchronous=full|normal|extra`` after either URL form, and
  ``timeout_s=SECONDS`` (default 30): how long a write may wait for the
  writer and a read may run before the store gives up;
- ``influx://HOST:PORT/BUCKET?org=ORG&token_env=VAR&side=PATH`` (``influxs://``
  for HTTPS): time series on an InfluxDB-API server, the rest in the SQLite
  side store at ``side`` (a path read by the same rule), or with
  ``documents_env=VAR`` in the PostgreSQL database whose connection string
  that environment variable holds.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from qosmon.errors import StoreURLError

# One default for every command and the collector: a file in the current
# directory, so ``qosmon serve`` then ``qosmon report`` in the same place
# find the same shows.
DEFAULT_STORE_URL = "qosmon.db"
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")
DEFAULT_SIDE_STORE = "qosmon-side.db"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SCHEMES = ("sqlite", "influx", "influxs")


@dataclass(frozen=True)
class SqliteURL:
    path: Path
    synchronous: str = "FULL"
    timeout_s: float = 30.0


@dataclass(frozen=True)
class InfluxURL:
    server: str  # http(s)://host:port
    bucket: str
    org: str
    token_env: str | None
    side: Path
    documents_env: str | None = None


def _params(url: str, query: str, allowed: set[str]) -> dict[str, str]:
    parsed = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(parsed) - allowed)
    if unknown:
        raise StoreURLError(
            f"store URL {url!r}: unknown parameter(s): {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    return {k: v[-1] for k, v in parsed.items()}


def _file(text: str) -> Path:
    return Path(text).expanduser()


def parse_store_url(url: str) -> SqliteURL | InfluxURL:
    """Read a store URL or path. Raises ``StoreURLError`` naming what is wrong."""
    if not url.strip():
        raise StoreURLError("store URL is empty")
    scheme_match = _SCHEME.match(url)
    if "://" not in url:
        if scheme_match and scheme_match.group(1).lower() in _SCHEMES:
            raise StoreURLError(
                f"store URL {url!r}: write {scheme_match.group(1)}://..., or a plain path"
            )
        return SqliteURL(_file(url))
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite":
        path, _, query = rest.partition("?")
        if not path:
            raise StoreURLError(f"store URL {url!r} has no file path")
        params = _params(url, query, {"synchronous", "timeout_s"})
        synchronous = params.get("synchronous", "FULL").upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise StoreURLError(
                f"store URL {url!r}: synchronous must be one of "
                f"{', '.join(m.lower() for m in SYNCHRONOUS_MODES)}"
            )
        try:
            timeout_s = float(params.get("timeout_s", "30"))
        except ValueError:
            timeout_s = float("nan")
        if not 0 < timeout_s <= 3600:
            raise StoreURLError(f"store URL {url!r}: timeout_s must be seconds, > 0 and <= 3600")
        return SqliteURL(_file(path), synchronous, timeout_s)
    if scheme in ("influx", "influxs"):
        parts = urlsplit(url)
        if not parts.hostname:
            raise StoreURLError(f"store URL {url!r} has no host")
        bucket = parts.path.strip("/")
        if not bucket:
            raise StoreURLError(f"store URL {url!r} names no bucket (influx://HOST:PORT/BUCKET)")
        params = _params(url, parts.query, {"org", "token_env", "side", "documents_env"})
        try:
            port = parts.port
        except ValueError:
            raise StoreURLError(f"store URL {url!r} has a bad port") from None
        http = "https" if scheme == "influxs" else "http"
        return InfluxURL(
            server=f"{http}://{parts.hostname}:{port or 8086}",
            bucket=bucket,
            org=params.get("org", "qosmon"),
            token_env=params.get("token_env"),
            side=_file(params.get("side", DEFAULT_SIDE_STORE)),
            documents_env=params.get("documents_env") or None,
        )
    raise StoreURLError(
        f"store URL {url!r}: unknown scheme {scheme!r} (a path, sqlite:// or influx://)"
    )


def _checked(url: str) -> str:
    try:
        parse_store_url(url)
    except StoreURLError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return url


def add_store_argument(
    parser: argparse.ArgumentParser, *, default: str | None = DEFAULT_STORE_URL,
    what: str = "where the shows are stored",
) -> None:
    """``--store URL|PATH`` for a command, checked while the command line is
    parsed (a bad URL is a usage error, exit 2)."""
    shown = f" (default {default})" if default else ""
    parser.add_argument(
        "--store", default=default, type=_checked, metavar="URL|PATH",
        help=f"{what}: a SQLite file path, sqlite:///abs/path.db, sqlite://rel/path.db "
             f"or influx://HOST:PORT/BUCKET?...{shown}",
    )
