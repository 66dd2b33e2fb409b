"""Structured JSON logs carrying delivery id, repository, PR and head sha."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_CONTEXT = (
    "delivery",
    "repo",
    "pr",
    "head_sha",
    "event",
    "action",
    "key",
    "error",
    "status",
    # the start line
    "role",
    "version",
    "store",
    "workers",
    "public_url",
    "port",
    "metrics_port",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _CONTEXT:
            value = record.__dict__.get(key)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("merge_gate")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
