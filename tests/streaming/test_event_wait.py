"""wait_event never loses a cancellation, even one that lands just as the event is set (where
``asyncio.wait_for`` before Python 3.12 returns normally: what kept a media track's task alive after aiortc
had stopped it, and a session's close waiting forever)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from livepuppet.streaming.event_wait import wait_event

Waiter = Callable[[asyncio.Event, float], Awaitable[object]]


async def swallowed(wait: Waiter, settle: int) -> bool:
    """Cancel a waiter ``settle`` loop turns after setting its event; True if the cancellation was lost
    (accepted by the task, which then finished normally)."""
    event = asyncio.Event()
    task = asyncio.ensure_future(wait(event, 10.0))
    for _ in range(2):
        await asyncio.sleep(0)
    event.set()
    for _ in range(settle):
        await asyncio.sleep(0)
    accepted = task.cancel()
    result = (await asyncio.gather(task, return_exceptions=True))[0]
    return accepted and not isinstance(result, asyncio.CancelledError)


def lost(wait: Waiter) -> int:
    async def run() -> int:
        return sum([await swallowed(wait, settle) for settle in range(4) for _ in range(10)])
    return asyncio.run(run())


def test_a_cancellation_as_the_event_is_set_is_never_lost() -> None:
    assert lost(wait_event) == 0


def test_times_out_and_returns_when_set() -> None:
    async def run() -> tuple[bool, bool, bool]:
        event = asyncio.Event()
        timed_out = await wait_event(event, 0.01)
        asyncio.get_running_loop().call_later(0.01, event.set)
        woke = await wait_event(event, 5.0)
        return timed_out, woke, await wait_event(event, 0.0)
    assert asyncio.run(run()) == (False, True, True)
