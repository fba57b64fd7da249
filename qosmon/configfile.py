"""Loading TOML config and scenario files into validated models.

Every error names the file, the key (as a dotted path with list indexes) and
the problem, so a user can fix the file without reading a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from qosmon.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def format_validation_error(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: invalid:"]
    for err in exc.errors():
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "value_error" and not err["loc"]:
            # Cross-field checks name their own key: "faults[2].region: ...".
            lines.append(f"  {msg.removeprefix('Value error, ')}")
            continue
        lines.append(f"  {_key_path(tuple(err['loc']))}: {msg}")
    return "\n".join(lines)


def load_model(path: str | Path, model: type[M]) -> M:
    """Read a TOML file and validate it as ``model``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(p), exc)) from None
