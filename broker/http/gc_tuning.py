"""The cyclic garbage collector set for a serving broker (issue 20, decision record 0055).

A request allocates thousands of short-lived objects (decoded entities, rendered documents), almost none of them
in reference cycles: reference counting frees them. With CPython's default thresholds (700, 10, 10) those
allocations still start a young collection every 700 objects and, every hundred or so of those, a full one that
walks every object of the process: the imported modules, the @context term maps, the compiled queries. A profile
of the query benchmark showed a quarter of its CPU in the collector, most of it in full collections.

So, while a broker runs:
- what exists when the start-up is done is frozen (gc.freeze): it lives as long as the process and is never
  walked again;
- young collections start every YOUNG allocations, not 700, and the older generations keep their ratios.
Cycles are still collected (an exception's traceback, an asyncio task's), only less often; memory stays bounded.

The collector's settings are the process's, not the app's: the first running broker of a process sets them and
the last one to stop puts back what it found, so tests that run several apps in one process end as they began.
"""

from __future__ import annotations

import gc
import threading

#: Allocations (net of deallocations) between two young collections while a broker runs.
YOUNG = 20_000

_lock = threading.Lock()
_running = 0
_saved: tuple[int, int, int] | None = None


def serving_started() -> None:
    """A broker of this process finished its start-up: freeze what exists, raise the young threshold."""
    global _running, _saved
    with _lock:
        _running += 1
        if _running == 1:
            _saved = gc.get_threshold()
            _, middle, old = _saved
            gc.set_threshold(YOUNG, middle, old)
        gc.freeze()


def serving_stopped() -> None:
    """A broker of this process stopped: the last one gives the collector back its thresholds and frozen objects."""
    global _running, _saved
    with _lock:
        _running = max(_running - 1, 0)
        if _running == 0:
            gc.unfreeze()
            if _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
