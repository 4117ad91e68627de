"""The generator's asyncio face on virtual time: frames due every 1/fps with the same audio, idle between
utterances, clear_buffer → an interrupted end and idle within 100 ms, a full buffer waits instead of failing,
frames-as-ready mode runs faster than real time and stops when idle."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.clock import ManualClock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.engine.speech.generator import (
    SEGMENT_END,
    AudioChunk,
    TalkAudioFrame,
    TalkingHeadGenerator,
    TalkSegmentEnd,
    TalkVideoFrame,
)
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.streaming.talk_stream import TalkStream, VirtualPacer


def stream(prepared, config: EngineConfig, model: AudioMouthModel, realtime: bool = True,  # noqa: ANN001
           **kw) -> tuple[TalkStream, ManualClock]:  # noqa: ANN003
    clock = ManualClock()
    gen = TalkingHeadGenerator(prepared, config, model, clock=clock, **kw)
    return TalkStream(gen, realtime=realtime, pacer=VirtualPacer(clock)), clock


def test_realtime_frames_on_virtual_time_and_interrupt(prepared, config, model, speech_wav: Path) -> None:  # noqa: ANN001
    pcm = read_audio(speech_wav, 24000)

    async def scenario() -> tuple[list, int]:
        s, clock = stream(prepared, config, model, fps=25.0, audio_rate=24000)
        got: list[tuple[int, object]] = []
        cleared_ns = 0
        async with s:
            it = aiter(s)
            for _ in range(5):  # idle before speech
                item = await anext(it)
                got.append((clock.now_ns(), item))
            for i in range(0, len(pcm), 2400):
                await s.push_audio(AudioChunk(pcm[i:i + 2400], 24000))
            while sum(isinstance(x, TalkAudioFrame) for _, x in got) < 20:
                item = await anext(it)
                got.append((clock.now_ns(), item))
            s.clear_buffer()
            cleared_ns = clock.now_ns()
            got.append((cleared_ns, "cleared"))
            for _ in range(6):
                item = await anext(it)
                got.append((clock.now_ns(), item))
        return got, cleared_ns

    got, cleared_ns = asyncio.run(scenario())
    video = [(ns, x) for ns, x in got if isinstance(x, TalkVideoFrame)]
    # Each frame is yielded at its due time on the (virtual) clock: k/fps after the start.
    assert all(abs(ns - k * 40_000_000) <= 1000 for k, (ns, _) in enumerate(video))
    assert [x.t for _, x in video] == pytest.approx(np.arange(len(video)) / 25)
    assert all(x.speech_t is None for _, x in video[:5])  # idle first
    ends = [(ns, x) for ns, x in got if isinstance(x, TalkSegmentEnd)]
    assert len(ends) == 1 and ends[0][1].interrupted
    mark = next(i for i, (_, x) in enumerate(got) if isinstance(x, str))
    after = [(ns, x) for ns, x in got[mark:] if isinstance(x, TalkVideoFrame)]
    assert after[0][1].speech_t is None and (after[0][0] - cleared_ns) <= 100e6  # idle within 100 ms
    audio = [x for _, x in got if isinstance(x, TalkAudioFrame)]
    assert np.allclose(np.concatenate([a.pcm for a in audio]), pcm[:20 * 960], atol=1e-6)  # the same audio


def test_full_buffer_waits_for_playback(prepared, model) -> None:  # noqa: ANN001
    config = EngineConfig()
    config = replace(config, speech=replace(config.speech, max_buffer_s=1.0))
    tone = (0.2 * np.sin(2 * np.pi * 180 * np.arange(48000) / 16000)).astype(np.float32)  # 3 s

    async def scenario() -> tuple[int, float]:
        s, clock = stream(prepared, config, model, fps=25.0, audio_rate=16000)
        audio = 0
        async with s:
            async def pull() -> None:
                nonlocal audio
                async for item in s:
                    if isinstance(item, TalkAudioFrame):
                        audio += len(item.pcm)
                    if isinstance(item, TalkSegmentEnd):
                        return
            consumer = asyncio.ensure_future(pull())
            for i in range(0, len(tone), 4000):
                await s.push_audio(AudioChunk(tone[i:i + 4000], 16000))  # 3 s into a 1 s buffer: waits, no error
            await s.push_audio(SEGMENT_END)
            await asyncio.wait_for(consumer, 60)
            return audio, clock.now_ns() / 1e9

    audio, elapsed = asyncio.run(scenario())
    assert audio == pytest.approx(48000, abs=16)
    assert elapsed >= 2.9  # played out in (virtual) real time


def test_frames_as_ready_run_faster_than_real_time(prepared, config, model, speech_wav: Path) -> None:  # noqa: ANN001
    pcm = read_audio(speech_wav, 16000)

    async def scenario() -> tuple[list, float]:
        s, clock = stream(prepared, config, model, realtime=False, fps=25.0, audio_rate=16000)
        items = []
        async with s:
            await s.push_audio(AudioChunk(pcm, 16000))
            await s.push_audio(SEGMENT_END)
            async for item in s:
                items.append(item)
                if isinstance(item, TalkSegmentEnd):
                    break
        return items, clock.now_ns() / 1e9

    items, elapsed = asyncio.run(scenario())
    video = [x for x in items if isinstance(x, TalkVideoFrame)]
    assert len(video) == int(np.ceil(len(pcm) / 16000 * 25)) and all(v.speech_t is not None for v in video)
    assert elapsed == 0.0  # no pacing: as fast as it renders


def test_clear_buffer_renders_the_idle_frame_at_once_in_real_time(prepared, config, model) -> None:  # noqa: ANN001
    """At 2 fps a frame is due every 500 ms; an interrupt while waiting brings the idle frame now."""
    import time

    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(32000) / 16000)).astype(np.float32)

    async def scenario() -> tuple[float, TalkVideoFrame, float]:
        gen = TalkingHeadGenerator(prepared, config, model, fps=2.0, audio_rate=16000)
        async with TalkStream(gen, realtime=True) as s:  # the real clock
            it = aiter(s)
            await s.push_audio(AudioChunk(tone, 16000))
            while not isinstance(item := await anext(it), TalkAudioFrame):
                pass
            await asyncio.sleep(0.05)
            cleared = time.monotonic()
            s.clear_buffer()
            while not isinstance(item := await anext(it), TalkVideoFrame):
                pass
            after = time.monotonic() - cleared
            while not isinstance(await anext(it), TalkVideoFrame):
                pass
            return after, item, time.monotonic() - cleared

    after, frame, following = asyncio.run(scenario())
    assert frame.speech_t is None and after < 0.3  # not at the next due time, ~450 ms away
    assert following > 0.4  # then the cadence restarts from the idle frame
