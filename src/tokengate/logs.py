"""Logging setup shared by every tokengate process: plain text or one JSON object per line.

Nothing here logs request or response bodies or headers; callers pass only safe fields
(method, path, status, durations, client ids, request ids) as `extra`.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from itertools import count
from typing import Any

import orjson

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and every `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(
            (k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        )
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class RequestIds:
    """Request ids: the caller's `X-Request-Id` when well-formed, else a cheap unique one."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(4)
        self._next = count(1)

    def take(self, incoming: str | None) -> str:
        """Reuse a safe incoming id (no injection into logs or headers) or mint one."""
        if incoming is not None and _REQUEST_ID.fullmatch(incoming):
            return incoming
        return f"{self._prefix}-{next(self._next):x}"
