"""Secrets a join presents to the stream's server: a WHEP Bearer token, a
Janus ``token`` or ``apisecret``.

They are named in the probe's config by where to read them (an environment
variable or a file), never by value, and are read at each join so a rotated
file is picked up without a restart. The values never reach a log line, an
error message or a sample: :func:`redact` scrubs them from any text that could
echo them (a server's error body, an exception naming a URL).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qosmon.errors import QosmonError

MAX_SECRET_BYTES = 8192


class CredentialError(QosmonError):
    """A configured secret cannot be read; the message names where, not what."""


@dataclass(frozen=True)
class SecretSource:
    """Where one secret comes from: an environment variable or a file."""

    env: str | None = None
    file: Path | None = None
    # Set when the config names a credential the probe does not hold: every
    # read fails with this reason.
    missing: str | None = None

    @property
    def configured(self) -> bool:
        return self.env is not None or self.file is not None or self.missing is not None

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def read(self) -> str | None:
        """The secret (surrounding whitespace stripped), None when not configured."""
        if self.missing is not None:
            raise CredentialError(self.missing)
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None or not value.strip():
                raise CredentialError(f"{self.describe()} is not set or empty")
            return value.strip()
        if self.file is not None:
            try:
                with open(self.file, "rb") as f:
                    raw = f.read(MAX_SECRET_BYTES + 1)
            except OSError as exc:
                raise CredentialError(
                    f"{self.describe()}: cannot read: {exc.strerror or exc}") from None
            if len(raw) > MAX_SECRET_BYTES:
                raise CredentialError(f"{self.describe()}: longer than {MAX_SECRET_BYTES} bytes")
            try:
                value = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise CredentialError(f"{self.describe()}: not UTF-8 text") from None
            if not value:
                raise CredentialError(f"{self.describe()} is empty")
            if any(c in value for c in "\r\n"):
                raise CredentialError(f"{self.describe()}: holds more than one line")
            return value
        return None


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
