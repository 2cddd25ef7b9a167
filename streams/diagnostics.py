"""diagnostics: what a silent worker is waiting on, on demand (``kill -USR1 <pid>``).

A worker that stops moving without an error (a stage waiting on a future nobody completes) says
nothing in its log, and a thread dump (``py-spy dump``) shows only the event loop idling in
``select``: what waits is a chain of coroutines, not a stack. On SIGUSR1 the worker logs every
pending asyncio task with the chain it awaits, innermost last; on SIGUSR2 ``faulthandler``
writes every thread's Python stack to stderr (the consumer's thread included), even with the
event loop blocked.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import inspect
import logging
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

_MAX_DEPTH = 64


def _frames(awaitable: Any) -> Iterator[FrameType]:
    """The frames of a coroutine's await chain, outermost first."""
    for _ in range(_MAX_DEPTH):
        frame = (getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
                 or getattr(awaitable, "ag_frame", None))
        if frame is not None:
            yield frame
        inner = (getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
                 or getattr(awaitable, "ag_await", None))
        if isinstance(inner, asyncio.Task):  # awaiting another task: go on into it
            inner = inner.get_coro()
        if inner is None:
            return
        awaitable = inner


def _chain(head: str, awaitable: Any) -> list[str]:
    """``head``, then a line per frame of ``awaitable``'s await chain."""
    return [head, *(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
                    for frame in _frames(awaitable))]


def task_chains(loop: asyncio.AbstractEventLoop) -> list[str]:
    """One text per pending task of ``loop``: its name, then each frame it awaits through."""
    chains = []
    for task in sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name()):
        lines = _chain(f"task {task.get_name()}", task.get_coro())
        # the future the task is suspended on (a sleep's, a call_thread promise, a queue's)
        lines.append(f"    waits on {getattr(task, '_fut_waiter', None)!r:.300}")
        chains.append("\n".join(lines))
    # An ``async for`` awaits an ``async_generator_asend``, which does not name its generator:
    # the suspended async generators (a stream's batches, Faust's iterators) are listed here.
    for agen in (o for o in gc.get_objects() if inspect.isasyncgen(o)):
        if agen.ag_await is None:
            continue
        chains.append("\n".join(_chain(f"async generator {agen.ag_code.co_qualname}", agen)))
    return chains


def log_task_chains(loop: asyncio.AbstractEventLoop, why: str) -> None:
    """Log every pending task's await chain, in one WARNING record."""
    chains = task_chains(loop)
    log.warning("diagnostics: %d pending tasks (%s)\n%s", len(chains), why, "\n".join(chains))


def install(loop: asyncio.AbstractEventLoop) -> None:
    """SIGUSR1 logs the tasks' await chains; SIGUSR2 dumps every thread's stack to stderr."""
    loop.add_signal_handler(signal.SIGUSR1, log_task_chains, loop, "SIGUSR1")
    faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True)
