"""heap: keep the cases stage's restored book out of the cyclic garbage collector's passes.

The book is a large graph of persistent maps and frozen records with no reference cycles:
reference counting frees every node a write replaces. CPython's cyclic collector still walks
every tracked object of the oldest generation in each full pass, on the event loop's thread:
measured at 20,000 restored cases (900,000 tracked objects) a pass took 1.0-1.4 s, linear in
the book, i.e. about a minute at a million cases: heartbeats and commits stop meanwhile, and
the group takes the worker for dead. Building the book from a snapshot also started a dozen
full passes over the half-built book, none of which could free anything.

So a restore runs with the collector paused, and what it built is then moved to the permanent
generation (``gc.freeze``): later passes see only what came after it. Frozen objects are still
freed by reference counting as the book moves on; only a reference cycle among them would
never be collected, and the collection before the restore keeps the cycles already garbage out.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def restoring(freeze: bool) -> Iterator[None]:
    """Run a book's restore with the cyclic collector paused, then freeze what it built.

    With ``freeze`` false (``NETRAL_WORKER_GC_FREEZE_RESTORED=false``) this does nothing. On
    an error nothing is frozen (the half-built book is garbage) and the collector is back on.
    """
    if not freeze:
        yield
        return
    gc.collect()  # garbage cycles of before the restore are freed here, not frozen for ever
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        before = gc.get_freeze_count()
        gc.freeze()
        log.debug("cases: %d objects of the restored book moved out of the collector's "
                  "passes", gc.get_freeze_count() - before)
    finally:
        if was_enabled:
            gc.enable()
