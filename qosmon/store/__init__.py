"""Storage behind one interface (``qosmon.store.base.Store``), chosen by URL
(``qosmon.store.url`` says which forms are accepted and how relative paths
are read).

The embedded store (a SQLite file) is the default. Query parameter
``synchronous=full|normal|extra`` (default full: acknowledged data survives
power loss).

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

from qosmon.errors import NoSuchStore, StoreError, StoreURLError
from qosmon.store.base import Store
from qosmon.store.url import DEFAULT_STORE_URL, InfluxURL, parse_store_url


def open_store(url: str, *, read_only: bool = False, must_exist: bool = False) -> Store:
    """Open the store a URL or path names, creating it if need be.
    ``read_only``: for commands that only read; nothing is created or
    changed. ``must_exist`` (implied by ``read_only``): a store that is not
    there raises ``NoSuchStore`` instead of being created. Raises
    ``StoreURLError`` for a bad URL and ``StoreError`` when the backend cannot
    be opened."""
    loc = parse_store_url(url)
    must_exist = must_exist or read_only
    if isinstance(loc, InfluxURL):
        token = ""
        if loc.token_env is not None:
            if loc.token_env not in os.environ:
                raise StoreURLError(
                    f"store URL: environment variable {loc.token_env} (token_env) is not set"
                )
            token = os.environ[loc.token_env]
        dsn = None
        if loc.documents_env is not None:
            dsn = os.environ.get(loc.documents_env)
            if not dsn:
                raise StoreURLError(f"store URL: environment variable {loc.documents_env} "
                                    "(documents_env) is not set")
        elif must_exist and not loc.side.exists():
            raise NoSuchStore(f"no such store: {loc.side} (the side store of {loc.server})")
        from qosmon.store.influx import InfluxStore

        return InfluxStore(url=loc.server, bucket=loc.bucket, org=loc.org, token=token,
                           side_path=loc.side, read_only=read_only, documents_dsn=dsn)
    if must_exist and not loc.path.exists():
        raise NoSuchStore(f"no such store: {loc.path}")
    if loc.path.is_dir():
        raise StoreURLError(f"store {loc.path} is a folder; name the store file in it")
    from qosmon.store.sqlite import SqliteStore

    return SqliteStore(loc.path, synchronous=loc.synchronous, read_only=read_only,
                       timeout_s=loc.timeout_s)


__all__ = [
    "DEFAULT_STORE_URL", "NoSuchStore", "Store", "StoreError", "StoreURLError", "open_store",
]
