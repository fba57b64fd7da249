"""Who is calling, and whether they may call again yet.

Tokens are looked up by their SHA-256 digest and the digest is then compared
in constant time, so neither the lookup nor the comparison leaks how much of a
guessed token was right. Plain tokens are never kept past construction.
Pure: no I/O, time comes in as an argument.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import SecretStr


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TokenRegistry:
    def __init__(
        self,
        probes: Iterable[tuple[str, SecretStr]],
        feed_tokens: Iterable[SecretStr],
        read_tokens: Iterable[SecretStr],
    ) -> None:
        self._probes = {token_digest(t.get_secret_value()): pid for pid, t in probes}
        self._feeds = {token_digest(t.get_secret_value()) for t in feed_tokens}
        self._reads = {token_digest(t.get_secret_value()) for t in read_tokens}
        self.probe_ids = sorted(self._probes.values())

    @staticmethod
    def _member(digest: bytes, known: Iterable[bytes]) -> bytes | None:
        for d in known:
            if hmac.compare_digest(d, digest):
                return d
        return None

    def probe_for(self, token: str) -> str | None:
        digest = token_digest(token)
        candidate = self._probes.get(digest)
        if candidate is None:
            return None
        # The dict found it; compare again in constant time so the answer
        # never rests on a short-circuiting byte comparison alone.
        for d, pid in self._probes.items():
            if pid == candidate and hmac.compare_digest(d, digest):
                return pid
        return None

    def is_feed(self, token: str) -> bool:
        return self._member(token_digest(token), self._feeds) is not None

    @property
    def reads_open(self) -> bool:
        return not self._reads

    def may_read(self, token: str) -> bool:
        digest = token_digest(token)
        return (
            self._member(digest, self._reads) is not None
            or self._member(digest, self._feeds) is not None
        )


@dataclass
class _Bucket:
    tokens: float
    last: float


class RateLimiter:
    """A token bucket per key (the caller's token digest)."""

    def __init__(self, requests_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = requests_per_s
        self.burst = float(burst)
        self._buckets: dict[bytes, _Bucket] = {}
        self._max_keys = max_keys

    def acquire(self, key: bytes, now: float) -> float | None:
        """Take one request's token. None if allowed, else seconds to wait."""
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self._max_keys:
                # Only authenticated callers get buckets, so this is a
                # safety net; full buckets are the ones safe to forget.
                self._buckets = {
                    k: v for k, v in self._buckets.items() if v.tokens < self.burst - 1
                }
            b = self._buckets[key] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + max(0.0, now - b.last) * self.rate)
        b.last = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return None
        return (1.0 - b.tokens) / self.rate
