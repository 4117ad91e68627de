"""Sessions come and go without stalling the others: ``livepuppet serve`` in its own process (the default
deployment, two engine workers), one talking head streaming speech at real time while twelve short sessions
open and close beside it; the server's event loop, which every session's frames and messages wait on, never
runs late by more than two 25 fps frames (``livepuppet_loop_lag_seconds``). A cycle collection over the
start-up heap took 0.1–0.2 s per closed session here before start-up objects were frozen out of it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.streaming.clients.server_metrics import LOOP_STALL_S, late_since, loop_lag
from livepuppet.streaming.clients.server_process import ServerProcess
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.protocol import Ready

pytestmark = [pytest.mark.slow, pytest.mark.realtime]
RATE = 16000


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "server.log", ("server.workers=2", "server.session_rate_per_min=0")) as server:
        yield server


def test_sessions_closing_do_not_stall_the_others(served: ServerProcess, speech_wav: Path) -> None:
    pcm = read_audio(speech_wav, RATE)
    url = f"ws://127.0.0.1:{served.ws_port}/talk"

    async def short_session() -> None:
        async with TalkClient(url) as c:
            await c.wait_for(lambda t: t.of_type(Ready), 30)
            await c.start(RATE)
            await c.send_audio(pcm[:RATE // 2], RATE, realtime=True)
            await c.wait_for(lambda t: len(t.frames) >= 5, 20)

    async def run() -> tuple[int, int, int]:
        async with TalkClient(url) as steady:
            await steady.wait_for(lambda t: t.of_type(Ready), 30)
            await steady.start(RATE)
            speaking = asyncio.ensure_future(steady.send_audio(np.tile(pcm, 20), RATE, realtime=True))
            try:
                await short_session()  # the workers' first session of each kind is warm-up
                before = await asyncio.to_thread(loop_lag, served.base_url)
                frames = len(steady.transcript.frames)
                for _ in range(12):
                    await short_session()
                after = await asyncio.to_thread(loop_lag, served.base_url)
                return *late_since(before, after, LOOP_STALL_S), len(steady.transcript.frames) - frames
            finally:
                speaking.cancel()
                await asyncio.gather(speaking, return_exceptions=True)

    stalls, samples, frames = asyncio.run(run())
    assert samples > 100  # the probe ran all along (12 sessions of over 0.5 s, a sample every 50 ms)
    assert frames > 100  # the steady session kept talking meanwhile
    assert stalls == 0, f"the server's loop ran {LOOP_STALL_S * 1e3:.0f}+ ms late {stalls} times while sessions closed"
