"""HMAC-SHA256 signatures of webhook bodies, for the sender and receivers.

The signed message is ``f"{timestamp}.".encode() + body`` (Stripe's and
Slack's scheme): binding the timestamp stops a captured request from being
replayed later, and signing the raw bytes avoids JSON canonicalisation."""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Qosmon-Timestamp"
SIGNATURE_HEADER = "X-Qosmon-Signature"
_PREFIX = "sha256="


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return _PREFIX + mac.hexdigest()


def verify(
    secret: str, timestamp: str | None, body: bytes, signature: str | None, now: float,
    tolerance_s: float = 300.0,
) -> str | None:
    """Check a received request; None if good, else the reason it is not."""
    if not timestamp or not signature:
        return "missing timestamp or signature header"
    try:
        ts = int(timestamp)
    except ValueError:
        return "timestamp is not an integer"
    if abs(now - ts) > tolerance_s:
        return f"timestamp {ts} is more than {tolerance_s:.0f} s from now"
    if not hmac.compare_digest(sign(secret, ts, body), signature):
        return "signature does not match"
    return None
