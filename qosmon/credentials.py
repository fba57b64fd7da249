"""Tokens given in a config file directly, or named there and read from the
environment (``*_env``) or a file (``*_file``): a systemd credential
(``LoadCredential=`` puts it in ``$CREDENTIALS_DIRECTORY``), a container
secret, a file only the service user may read. The config file itself can
then be world-readable and kept in version control.

A file holds one token; surrounding whitespace (the final newline) is
dropped. ``$VARS`` in a file path are expanded, so
``token_file = "${CREDENTIALS_DIRECTORY}/probe-token"`` works.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

# A token file is a few hundred bytes; refuse to read something else.
MAX_TOKEN_FILE_BYTES = 64 * 1024


def resolve_secret(
    value: SecretStr | None, env: str | None, file: str | None, key: str
) -> SecretStr | None:
    """The token from exactly one of ``value``, ``env`` (a variable name) or
    ``file`` (a path); None if none is given. Raises ``ValueError`` naming
    ``key`` (e.g. ``token``) and what is wrong, never the token."""
    given = [k for k, v in ((key, value), (f"{key}_env", env), (f"{key}_file", file))
             if v is not None]
    if len(given) > 1:
        raise ValueError(f"give one of {', '.join(given)}, not several")
    if env is not None:
        if env not in os.environ:
            raise ValueError(f"{key}_env: environment variable {env} is not set")
        token = os.environ[env].strip()
        if not token:
            raise ValueError(f"{key}_env: environment variable {env} is empty")
        return SecretStr(token)
    if file is not None:
        path = Path(os.path.expandvars(file))
        if "$" in str(path):
            raise ValueError(f"{key}_file: {file}: a variable in it is not set")
        try:
            if path.stat().st_size > MAX_TOKEN_FILE_BYTES:
                raise ValueError(f"{key}_file: {path}: larger than a token file can be")
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{key}_file: {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ValueError(f"{key}_file: {path}: not UTF-8 text") from None
        if not token:
            raise ValueError(f"{key}_file: {path} is empty")
        return SecretStr(token)
    return value
