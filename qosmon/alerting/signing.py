"""Signatures of webhook deliveries, for the sender and for receivers.

The layout is Standard Webhooks' (https://www.standardwebhooks.com/), so a
receiver can use any of its libraries or the helpers below:

* ``webhook-id``: the delivery id. It is stable: a retry, even one sent by
  a restarted collector, carries the same id, so a receiver that has seen it
  drops the request as a duplicate. The same id is in the body
  (``delivery_id``).
* ``webhook-timestamp``: Unix seconds when this attempt was signed.
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of
  ``f"{id}.{timestamp}.".encode() + body``, space-separated if several.

Binding the timestamp stops a captured request from being replayed later;
signing the raw bytes avoids JSON canonicalisation. The key is the
configured secret's UTF-8 bytes, or, for a secret written ``whsec_<base64>``
(the Standard Webhooks form), the decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
from collections.abc import Mapping

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_VERSION = "v1"
_SECRET_PREFIX = "whsec_"


def _key(secret: str) -> bytes:
    if secret.startswith(_SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(_SECRET_PREFIX):], validate=True)
        except binascii.Error:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    return secret.encode()


def sign(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for ``body`` sent as ``delivery_id`` at
    ``timestamp``."""
    msg = f"{delivery_id}.{timestamp}.".encode() + body
    mac = hmac.new(_key(secret), msg, hashlib.sha256).digest()
    return f"{_VERSION},{base64.b64encode(mac).decode()}"


def headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers a signed delivery carries."""
    return {
        ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, delivery_id, timestamp, body),
    }


def verify(
    secret: str, request_headers: Mapping[str, str], body: bytes, now: float,
    tolerance_s: float = 300.0,
) -> str | None:
    """Check a received request; None if good, else the reason it is not.

    ``request_headers`` is looked up case-insensitively."""
    lower = {k.lower(): v for k, v in request_headers.items()}
    delivery_id = lower.get(ID_HEADER)
    timestamp = lower.get(TIMESTAMP_HEADER)
    signatures = lower.get(SIGNATURE_HEADER)
    if not delivery_id or not timestamp or not signatures:
        return f"missing {ID_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    try:
        ts = int(timestamp)
    except ValueError:
        return "timestamp is not an integer"
    if abs(now - ts) > tolerance_s:
        return f"timestamp {ts} is more than {tolerance_s:.0f} s from now"
    expected = sign(secret, delivery_id, ts, body)
    for candidate in signatures.split(" "):
        if hmac.compare_digest(expected.encode(), candidate.encode()):
            return None
    return "signature does not match"


class SeenDeliveries:
    """What a receiver keeps to drop duplicates: the last ``capacity``
    delivery ids, oldest forgotten first."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._capacity = capacity

    def first_time(self, delivery_id: str) -> bool:
        """True the first time an id is seen (process it), False after."""
        if delivery_id in self._ids:
            self._ids.move_to_end(delivery_id)
            return False
        self._ids[delivery_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True
