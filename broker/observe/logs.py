"""`--log-format json`: one JSON object per log line (timestamp, level, logger, message, the request id of the
request being served when there is one, and the structured fields a record carries), for log collectors."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from broker.requestid import REQUEST_ID

#: Attributes every LogRecord has: what is not among them was passed in `extra` and goes into the JSON object.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        rid = REQUEST_ID.get()
        if rid is not None:
            line["request_id"] = rid
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
