"""How qosmon's commands log: to stderr, qosmon's own messages at INFO and
the libraries' (aiortc, aioice, aiohttp, asyncio...) only from WARNING, so a
show's lines are not buried under connection chatter.

``-v``: qosmon's DEBUG too; ``-vv``: every library's DEBUG as well.
``--log-format json``: one JSON object per line (``ts``, ``level``,
``logger``, ``message``, ``exc`` when there is a traceback), for a collector
whose logs go to a log shipper.

Nothing secret reaches a log line from qosmon: tokens are ``SecretStr`` and
store URLs are logged without their query.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

# The packages whose loggers are qosmon's own.
OWN_LOGGERS = ("qosmon", "probes")
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _OwnHandler(logging.StreamHandler[TextIO]):
    """The handler ``configure_logging`` installs (so it can find it again)."""


def configure_logging(
    verbosity: int = 0, fmt: LogFormat = "text", stream: TextIO | None = None
) -> None:
    """Set up the root logger for a command. Calling it again replaces the
    handler it added before; handlers others added (a test runner's) stay."""
    handler = _OwnHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OwnHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    own = logging.DEBUG if verbosity >= 1 else logging.INFO
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(own)
