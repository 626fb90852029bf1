"""The id of the request being served, for the log lines it causes and the notifications its writes trigger.

Set by the observability middleware (broker.observe.middleware) for the duration of one request; a store reads it
when it appends a write's change events, so that the notifier, maybe in another process, can send it on (record
0242). A context variable: each request's task has its own, and nothing below broker/http needs a parameter.
"""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("agora_request_id", default=None)

#: The header that carries it, in requests and answers, and on HTTP notifications (an MQTT user property, or a
#: member of an MQTT 3.1.1 notification's metadata).
REQUEST_ID_HEADER = "X-Request-Id"
