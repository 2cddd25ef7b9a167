"""SIGUSR1's dump names what each pending task waits on, through its whole await chain."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from streams import diagnostics
from tests.fixtures.waiting import wait_until


async def _inner(gate: asyncio.Event) -> None:
    await gate.wait()


async def _outer(gate: asyncio.Event) -> None:
    await _inner(gate)


def chains_while_waiting(waiter: Callable[[asyncio.Event], Coroutine[Any, Any, None]], name: str
                         ) -> list[str]:
    """The dump taken while a task named ``name`` runs ``waiter`` and waits on a gate."""
    async def main() -> list[str]:
        gate = asyncio.Event()
        task = asyncio.create_task(waiter(gate), name=name)
        await asyncio.sleep(0)
        chains = diagnostics.task_chains(asyncio.get_running_loop())
        gate.set()
        await task
        return chains

    return asyncio.run(main())


def test_a_waiting_task_is_shown_with_every_coroutine_it_awaits_through() -> None:
    chains = chains_while_waiting(_outer, "stuck-stage")
    stuck = next(c for c in chains if c.startswith("task stuck-stage"))
    lines = stuck.splitlines()
    assert [line.rsplit(" ", 1)[-1] for line in lines[1:4]] == ["_outer", "_inner", "wait"]
    assert "waits on <Future pending" in lines[-1]


def test_sigusr1_logs_the_chains(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        diagnostics.install(asyncio.get_running_loop())
        gate = asyncio.Event()
        task = asyncio.create_task(_outer(gate), name="stuck-stage")
        await asyncio.sleep(0)
        os.kill(os.getpid(), signal.SIGUSR1)

        async def dumped() -> bool:  # the handler runs on the loop
            return "diagnostics:" in caplog.text

        await wait_until(dumped, 10, "the SIGUSR1 dump in the log")
        gate.set()
        await task

    with caplog.at_level(logging.WARNING, logger="streams.diagnostics"):
        asyncio.run(main())
    assert "task stuck-stage" in caplog.text
    assert "_inner" in caplog.text


def test_a_task_iterating_an_async_generator_shows_where_the_generator_waits() -> None:
    async def batches(gate: asyncio.Event) -> AsyncIterator[int]:
        await _inner(gate)
        yield 1

    async def consume(gate: asyncio.Event) -> None:
        async for _ in batches(gate):
            pass

    chains = chains_while_waiting(consume, "stream")
    agen = next(c for c in chains if c.startswith("async generator"))
    assert "batches" in agen.splitlines()[0] and agen.splitlines()[-1].endswith("wait")
