"""The output video track: a late engine gets one repeat to keep the cadence, then only keep-alive repeats
(re-encoding the same picture at full rate took the CPU an overloaded engine needed); a new frame goes out
at once, repeat or not."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from livepuppet.engine.clock import MonotonicClock
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.tracks import HOLD_FRAMES, REPEAT_HOLD_S, RingVideoTrack

FPS = 50.0


def test_a_late_engine_gets_one_cadence_repeat_then_keep_alive_repeats_and_new_frames_at_once() -> None:
    async def scenario() -> tuple[list[float], float, int, int]:
        clock = MonotonicClock()
        picture = np.zeros((64, 64, 3), np.uint8)
        track = RingVideoTrack(3, FPS, clock, ServerMetrics.create(), picture, asyncio.get_running_loop())
        waits = []
        for _ in range(3):  # the engine makes nothing
            start = time.monotonic()
            await track.recv()
            waits.append(time.monotonic() - start)

        async def engine_frame() -> None:
            await asyncio.sleep(0.05)
            track.ring.write(np.full((64, 64, 3), 200, np.uint8), clock.now_ns(), 0)

        start = time.monotonic()
        writer = asyncio.ensure_future(engine_frame())
        frame = await track.recv()  # waiting on a keep-alive hold: the new frame must not wait for it
        fresh_after = time.monotonic() - start
        await writer
        return waits, fresh_after, track.repeated, int(frame.to_ndarray(format="rgb24")[0, 0, 0])

    waits, fresh_after, repeated, value = asyncio.run(scenario())
    assert waits[0] < HOLD_FRAMES / FPS + 0.05, "the first repeat keeps the cadence"
    assert all(w >= 0.8 * REPEAT_HOLD_S for w in waits[1:]), f"later repeats are keep-alives: {waits}"
    assert repeated == 3
    assert value == 200 and fresh_after < 0.05 + 0.05, "a new frame is sent as soon as it exists"


def test_stopping_the_sender_while_frames_arrive_always_ends_its_task() -> None:
    """aiortc stops a sender by cancelling the task that awaits ``recv()``; a frame written at that moment
    must not keep the task alive (it did: the session's close then waited forever)."""
    async def scenario() -> int:
        clock = MonotonicClock()
        loop = asyncio.get_running_loop()
        stuck = 0
        for i in range(36):
            track = RingVideoTrack(3, FPS, clock, ServerMetrics.create(), np.zeros((8, 8, 3), np.uint8), loop)

            async def sender(track: RingVideoTrack) -> None:
                while True:
                    await track.recv()

            task = asyncio.ensure_future(sender(track))
            await asyncio.sleep(0.03 if i % 2 else 0.1)  # waiting for a frame, or holding after a repeat
            track.ring.write(np.ones((8, 8, 3), np.uint8), clock.now_ns(), i)
            for _ in range(i // 2 % 6):  # the ring's wake-up is scheduled thread-safely: let it land ...
                await asyncio.sleep(0)
            task.cancel()  # ... and stop the sender at every moment around it
            done, _ = await asyncio.wait((task,), timeout=1.0)
            stuck += not done
            task.cancel()
        return stuck

    assert asyncio.run(scenario()) == 0
