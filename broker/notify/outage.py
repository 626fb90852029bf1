"""How the background tasks of the notifier live through a store outage (decision record 0047).

While the store is unavailable (Store.is_unavailable: Redis unreachable, SQLite locked past its busy timeout) every
look at the change feed fails, once a second or so. The task keeps running and retrying; the log gets one warning
when the outage begins and one line when the store answers again, instead of a traceback at every retry. Any other
failure is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import time

from broker.store.base import Store

log = logging.getLogger("agora.notify")

#: Seconds a task waits before it tries again after the store failed it (the Redis client already retried for
#: about 4 s by then).
OUTAGE_RETRY = 1.0


class Outage:
    """The outage state of one background task (`name`, as the log shows it) over one store."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.since: float | None = None  # monotonic time of the first failure of the outage under way

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, doing: str) -> None:
        """Log a failure of `doing`: a store outage once (a warning), anything else with its traceback."""
        if not self.store.is_unavailable(exc):
            log.error("%s: %s failed; retrying", self.name, doing, exc_info=exc)
            return
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "%s paused: the store is unavailable (%s: %s); retrying until it is back",
                self.name,
                type(exc).__name__,
                exc,
            )

    def ok(self) -> None:
        """The store answered: end the outage, if there was one, with a line of its own. A warning as well, so
        that a log filtered to warnings never shows an outage that did not end."""
        if self.since is not None:
            log.warning(
                "%s resumed: the store is back, %.1f s after it first failed", self.name, time.monotonic() - self.since
            )
            self.since = None
