"""Storage behind one interface (``qosmon.store.base.Store``), chosen by URL.

``sqlite:///abs/path.db`` or ``sqlite://relative/path.db`` (default): the
embedded store. Query parameter ``synchronous=full|normal|extra`` (default
full: acknowledged data survives power loss).

``influx://HOST:PORT/BUCKET?org=ORG&token_env=VAR&side=PATH`` (``influxs://``
for HTTPS): time series (probe, business, stock) go to an InfluxDB-API server
through influxdb-client; show metadata, on-screen events, stock states,
incidents, alert deliveries, the alert outbox, show leases and batch ids go
to the SQLite side store at ``side`` (default ``qosmon-side.db``), or, with
``documents_env=VAR``, to the PostgreSQL database whose libpq connection
string is in that environment variable (several collectors sharing shows;
``qosmon.store.postgres``). The token is read from the environment variable
named by ``token_env`` so it never sits in a config file or a log.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from qosmon.store.base import Store, StoreError

DEFAULT_STORE_URL = "sqlite://qosmon.db"


class StoreURLError(ValueError):
    """A store URL that cannot be used; the message says what is wrong."""


def _params(query: str, allowed: set[str]) -> dict[str, str]:
    parsed = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(parsed) - allowed)
    if unknown:
        raise StoreURLError(
            f"unknown store URL parameter(s): {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    return {k: v[-1] for k, v in parsed.items()}


def open_store(url: str) -> Store:
    """Open the store a URL names. Raises ``StoreURLError`` for a bad URL and
    ``StoreError`` when the backend cannot be opened."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreURLError(f"store URL {url!r} has no scheme (sqlite:// or influx://)")
    if scheme == "sqlite":
        path, _, query = rest.partition("?")
        if not path:
            raise StoreURLError(f"store URL {url!r} has no file path")
        params = _params(query, {"synchronous"})
        from qosmon.store.sqlite import SqliteStore

        try:
            return SqliteStore(path, synchronous=params.get("synchronous", "FULL"))
        except ValueError as exc:
            raise StoreURLError(f"store URL {url!r}: {exc}") from None
    if scheme in ("influx", "influxs"):
        parts = urlsplit(url)
        if not parts.hostname:
            raise StoreURLError(f"store URL {url!r} has no host")
        bucket = parts.path.strip("/")
        if not bucket:
            raise StoreURLError(f"store URL {url!r} names no bucket (influx://HOST:PORT/BUCKET)")
        params = _params(parts.query, {"org", "token_env", "side", "documents_env"})
        token = ""
        if "token_env" in params:
            var = params["token_env"]
            if var not in os.environ:
                raise StoreURLError(f"store URL: environment variable {var} (token_env) is not set")
            token = os.environ[var]
        try:
            port = parts.port
        except ValueError:
            raise StoreURLError(f"store URL {url!r} has a bad port") from None
        dsn = None
        if "documents_env" in params:
            var = params["documents_env"]
            if not os.environ.get(var):
                raise StoreURLError(
                    f"store URL: environment variable {var} (documents_env) is not set")
            dsn = os.environ[var]
        http = "https" if scheme == "influxs" else "http"
        from qosmon.store.influx import InfluxStore

        return InfluxStore(
            url=f"{http}://{parts.hostname}:{port or 8086}",
            bucket=bucket,
            org=params.get("org", "qosmon"),
            token=token,
            side_path=params.get("side", "qosmon-side.db"),
            documents_dsn=dsn,
        )
    raise StoreURLError(f"store URL {url!r}: unknown scheme {scheme!r} (sqlite:// or influx://)")


__all__ = ["DEFAULT_STORE_URL", "Store", "StoreError", "StoreURLError", "open_store"]
