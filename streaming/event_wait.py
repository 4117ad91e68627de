"""Waiting for an asyncio event with a timeout, without ever losing a cancellation.

Before Python 3.12, ``asyncio.wait_for(event.wait(), t)`` returns normally when the task is cancelled just as
the event is set: the cancellation is swallowed. In a media track that is fatal: aiortc stops a sender by
cancelling the task that calls ``recv()`` and then waits for it to exit, so one frame arriving at the wrong
moment kept the task running and a session's close waiting forever.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set (True) or ``timeout`` seconds pass (False); a cancellation always raises."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait((waiter,), timeout=max(0.0, timeout))
    finally:
        if not waiter.done():
            waiter.cancel()
    return bool(done)
