"""The LiveKit Agents adapter without a LiveKit server (none can run here): the video generator driven the way
``AvatarRunner`` drives it (frames pulled from its iterator while audio is pushed), on the real clock: about
fps frames per second of speech with the same audio, re-tracked lips, idle frames between turns, clear_buffer →
``AudioSegmentEnd`` within 200 ms; the runner wiring through our ``AvatarSession`` against livekit-agents' own
mock room (tracks published, playback_finished with ``interrupted``); the worker's job acceptance and load."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from unittest.mock import AsyncMock, create_autospec

import numpy as np
import pytest

pytest.importorskip("livekit.agents", reason="the livekit extra is not installed (pip install 'livepuppet[livekit]')")

pytestmark = pytest.mark.realtime  # paced in real time, and its timing is asserted

from livekit import rtc  # noqa: E402
from livekit.agents import JobRequest  # noqa: E402
from livekit.agents.ipc.mock_room import create_mock_room  # noqa: E402
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF  # noqa: E402
from livekit.agents.voice import AgentSession  # noqa: E402
from livekit.agents.voice.avatar import AudioSegmentEnd  # noqa: E402
from livekit.agents.voice.io import PlaybackFinishedEvent  # noqa: E402
from livepuppet.engine.face.expression import FaceFeatures  # noqa: E402
from livepuppet.engine.speech.resampler import StreamingResampler  # noqa: E402
from livepuppet.errors import InputError  # noqa: E402
from livepuppet.integrations.livekit import (  # noqa: E402
    AGENT_NAME,
    AvatarJob,
    AvatarSession,
    EngineLoad,
    LivePuppetVideoGenerator,
    accept_avatar_job,
    avatar_server,
)

from tests.integrations.speech_checks import assert_lips_follow  # noqa: E402

FPS = 25.0
RATE = 24000


def audio_frames(pcm: np.ndarray, rate: int, chunk_s: float = 0.02) -> list[rtc.AudioFrame]:
    """Speech as the agent's TTS hands it to the avatar: 20 ms int16 frames."""
    data = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    step = int(rate * chunk_s)
    return [rtc.AudioFrame(data[i:i + step].tobytes(), rate, 1, len(data[i:i + step]))
            for i in range(0, len(data), step)]


Item = rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd


async def pull(gen: LivePuppetVideoGenerator, got: list[tuple[float, Item]], stop: asyncio.Event,
               speaking: asyncio.Event | None = None, ended: asyncio.Event | None = None) -> None:
    """Pull like AvatarRunner; ``speaking`` is set once 15 audio frames have come out, ``ended`` at the first
    segment end."""
    audio = 0
    async for item in gen:
        got.append((time.monotonic(), item))
        audio += isinstance(item, rtc.AudioFrame)
        if speaking is not None and audio >= 15:
            speaking.set()
        if ended is not None and isinstance(item, AudioSegmentEnd):
            ended.set()
        if stop.is_set():
            return


def rgb(frame: rtc.VideoFrame) -> np.ndarray:
    return np.frombuffer(frame.data, np.uint8).reshape(frame.height, frame.width, 4)[..., :3]


def speech_frames(items: list[Item]) -> list[rtc.VideoFrame]:
    """Video frames that carry speech: each is followed by its audio slice."""
    return [a for a, b in zip(items, items[1:], strict=False)
            if isinstance(a, rtc.VideoFrame) and isinstance(b, rtc.AudioFrame)]


def test_generator_as_avatar_runner_drives_it(assets, utterance,  # noqa: ANN001
                                              measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    duration = len(utterance.audio) / utterance.rate

    async def scenario() -> list[tuple[float, Item]]:
        gen = LivePuppetVideoGenerator(assets=assets, fps=FPS, sample_rate=RATE)
        got: list[tuple[float, Item]] = []
        stop, ended = asyncio.Event(), asyncio.Event()
        puller = asyncio.ensure_future(pull(gen, got, stop, ended=ended))
        await asyncio.sleep(0.3)
        for frame in audio_frames(utterance.audio, utterance.rate):  # as fast as the TTS makes it
            await gen.push_audio(frame)
        await gen.push_audio(AudioSegmentEnd())
        await asyncio.wait_for(ended.wait(), 4 * duration)  # real time (slower if the machine is starved)
        await asyncio.sleep(1.2)  # idle frames
        stop.set()
        await asyncio.wait_for(puller, 5)
        await gen.aclose()
        return got

    got = asyncio.run(scenario())
    items = [x for _, x in got]
    ends = [i for i, x in enumerate(items) if isinstance(x, AudioSegmentEnd)]
    assert len(ends) == 1
    speech = speech_frames(items[:ends[0]])
    assert abs(len(speech) - duration * FPS) <= 3  # about fps pictures per second of speech
    audio = [x for x in items if isinstance(x, rtc.AudioFrame)]
    assert all(a.sample_rate == RATE and a.num_channels == 1 for a in audio)
    out = np.concatenate([np.frombuffer(a.data, np.int16) for a in audio]).astype(np.float32) / 32767
    assert abs(len(out) / RATE - duration) <= 0.1  # audio out = audio in
    ref = StreamingResampler(utterance.rate, RATE).push(utterance.audio)
    n = min(len(ref), len(out)) - 200
    assert np.corrcoef(ref[:n], out[:n])[0, 1] > 0.99
    assert max(i for i, x in enumerate(items) if isinstance(x, rtc.AudioFrame)) < ends[0]  # the end after the audio
    # Idle frames keep coming after the utterance (no audio), and they move.
    idle = [x for x in items[ends[0]:] if isinstance(x, rtc.VideoFrame)]
    assert len(idle) >= 20 and not any(isinstance(x, rtc.AudioFrame) for x in items[ends[0]:])
    moving = np.stack([rgb(f) for f in idle]).astype(np.int16)
    assert np.abs(moving - moving[0]).max() > 10
    times = np.array([t for t, x in got if isinstance(x, rtc.VideoFrame)])
    assert np.median(np.diff(times)) == pytest.approx(1 / FPS, abs=0.01)  # real time, fps
    # The j-th speech frame shows the middle of the j-th slice: re-tracked, lips close on p/b/m, open on vowels.
    rest = FaceFeatures.measure(assets.source.neutral).lip_gap
    shown = [((j + 0.5) / FPS, rgb(f)) for j, f in enumerate(speech)]
    assert_lips_follow(utterance, shown, rest, measure_face)


def test_clear_buffer_ends_the_segment_within_200_ms(assets, utterance) -> None:  # noqa: ANN001
    async def scenario() -> tuple[list[tuple[float, Item]], float]:
        gen = LivePuppetVideoGenerator(assets=assets, fps=FPS, sample_rate=RATE)
        got: list[tuple[float, Item]] = []
        stop = asyncio.Event()
        speaking = asyncio.Event()
        puller = asyncio.ensure_future(pull(gen, got, stop, speaking))
        for frame in audio_frames(np.tile(utterance.audio, 2), utterance.rate, 0.1):
            await gen.push_audio(frame)
        await asyncio.wait_for(speaking.wait(), 10)
        cleared = time.monotonic()
        gen.clear_buffer()
        await asyncio.sleep(0.6)
        stop.set()
        await asyncio.wait_for(puller, 5)
        await gen.aclose()
        return got, cleared

    got, cleared = asyncio.run(scenario())
    end = next(t for t, x in got if isinstance(x, AudioSegmentEnd))
    assert end >= cleared and end - cleared <= 0.2
    assert not [t for t, x in got if isinstance(x, rtc.AudioFrame) and t > end]  # the queued speech is gone
    assert sum(isinstance(x, rtc.VideoFrame) for t, x in got if t > end) >= 10  # idle frames go on


def mock_room():  # noqa: ANN201
    """livekit-agents' own mock room (a fresh one), with track publications that can be awaited."""
    room = create_mock_room.__wrapped__()
    publication = create_autospec(rtc.LocalTrackPublication, instance=True)
    room.local_participant.publish_track = AsyncMock(return_value=publication)
    return room


def test_avatar_session_in_process_against_a_mock_room(assets, utterance) -> None:  # noqa: ANN001
    short = utterance.audio[:int(1.0 * utterance.rate)]

    async def scenario() -> tuple[list[PlaybackFinishedEvent], object, LivePuppetVideoGenerator | None]:
        room = mock_room()
        agent = AgentSession()
        avatar = AvatarSession(assets=assets, fps=FPS, sample_rate=RATE)
        await avatar.start(agent, room)
        output = agent.output.audio
        finished: list[PlaybackFinishedEvent] = []
        event = asyncio.Event()

        def on_finished(ev: PlaybackFinishedEvent) -> None:
            finished.append(ev)
            event.set()

        output.on("playback_finished", on_finished)
        for frame in audio_frames(short, utterance.rate):  # what the agent's TTS sends to its audio output
            await output.capture_frame(frame)
        output.flush()
        await asyncio.wait_for(event.wait(), 10)
        event.clear()
        for frame in audio_frames(np.tile(utterance.audio, 2), utterance.rate):
            await output.capture_frame(frame)
        await asyncio.sleep(0.8)
        output.clear_buffer()  # barge-in
        await asyncio.wait_for(event.wait(), 10)
        generator = avatar.generator
        await avatar.aclose()
        return finished, room, generator

    finished, room, generator = asyncio.run(scenario())
    calls = room.local_participant.publish_track.await_args_list
    sources = sorted(c.args[1].source for c in calls)
    assert sources == sorted([rtc.TrackSource.SOURCE_MICROPHONE, rtc.TrackSource.SOURCE_CAMERA])  # face and voice
    assert len(finished) == 2
    assert not finished[0].interrupted and finished[0].playback_position == pytest.approx(1.0, abs=0.1)
    assert finished[1].interrupted and 0.0 < finished[1].playback_position < 2 * len(utterance.audio) / utterance.rate


def test_avatar_session_worker_mode_dispatches_and_streams_to_the_avatar(assets) -> None:  # noqa: ANN001
    """Worker mode: the agent asks LiveKit for a livepuppet-avatar job and sends its audio over data streams."""
    from livekit import api
    from livekit.agents.voice.avatar import DataStreamAudioOutput
    from livekit.api.agent_dispatch_service import AgentDispatchService

    async def scenario() -> tuple[object, object, AgentSession]:
        room = mock_room()
        lkapi = create_autospec(api.LiveKitAPI, instance=True)
        lkapi.agent_dispatch = create_autospec(AgentDispatchService, instance=True)
        agent = AgentSession()
        avatar = AvatarSession(mode="worker", avatar_identity="face-7", fps=30.0, sample_rate=16000)
        await avatar.start(agent, room, lkapi=lkapi)
        await avatar.aclose()
        return lkapi, room, agent

    lkapi, room, agent = asyncio.run(scenario())
    request = lkapi.agent_dispatch.create_dispatch.await_args.args[0]  # type: ignore[attr-defined]
    assert request.agent_name == AGENT_NAME and request.room == room.name  # type: ignore[attr-defined]
    job = AvatarJob.from_json(request.metadata)
    assert job == AvatarJob(agent_identity=room.local_participant.identity,  # type: ignore[attr-defined]
                            avatar_identity="face-7", fps=30.0, sample_rate=16000)
    output = agent.output.audio
    assert isinstance(output, DataStreamAudioOutput) and output._destination_identity == "face-7"
    with pytest.raises(InputError, match="mode"):
        AvatarSession(mode="cloud")  # type: ignore[arg-type]


def test_worker_accepts_avatar_jobs_on_behalf_of_the_agent() -> None:
    async def scenario(metadata: str) -> JobRequest:
        request = create_autospec(JobRequest, instance=True)
        request.job.metadata = metadata
        request.id = "AJ_test"
        await accept_avatar_job(request)
        return request

    job = AvatarJob(agent_identity="agent-1", avatar_identity="face-1", fps=30.0)
    assert AvatarJob.from_json(job.to_json()) == job
    accepted = asyncio.run(scenario(job.to_json()))
    accepted.accept.assert_awaited_once()
    kwargs = accepted.accept.await_args.kwargs
    assert kwargs["identity"] == "face-1" and kwargs["attributes"] == {ATTRIBUTE_PUBLISH_ON_BEHALF: "agent-1"}
    for bad in ("not json", json.dumps({"fps": 25}), json.dumps({"agent_identity": "a", "colour": "red"})):
        rejected = asyncio.run(scenario(bad))
        rejected.reject.assert_awaited_once()
        rejected.accept.assert_not_awaited()
    with pytest.raises(InputError, match="emotion"):
        AvatarJob.from_json(json.dumps({"agent_identity": "a", "emotion": "gleeful"}))


def test_worker_reports_engine_time_against_the_frame_budget(assets) -> None:  # noqa: ANN001
    meter = EngineLoad(cores=2)
    server = avatar_server(url="ws://127.0.0.1:7880", api_key="key", api_secret="secret", load=meter)
    assert server._agent_name == AGENT_NAME and server.load_fnc is meter
    assert meter() == 0.0 and meter.sessions == 0

    async def scenario() -> tuple[float, float, int]:
        gen = LivePuppetVideoGenerator(assets=assets, fps=FPS, sample_rate=RATE, load=meter)
        it = aiter(gen)
        for _ in range(10):
            await anext(it)
        stats = gen.generator.stats
        per_frame_ms = stats.render_ms_total / stats.frames
        load, sessions = meter(), meter.sessions
        await gen.aclose()
        return per_frame_ms, load, sessions

    per_frame_ms, load, sessions = asyncio.run(scenario())
    assert sessions == 1 and per_frame_ms > 0.5
    assert load == pytest.approx(min(1.0, per_frame_ms * FPS / 1000 / 2), rel=0.2)  # ms per frame × fps ÷ cores
    assert meter.sessions == 0  # a closed session no longer counts


def test_worker_given_a_loaded_avatar_does_not_load_another(assets, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    # livepuppet livekit-worker loads the avatar before the server starts (then freezes the heap it made).
    import livepuppet.integrations.livekit as lk

    def no_load(*_: object) -> None:
        raise AssertionError("the avatar was loaded again")

    monkeypatch.setattr(lk, "load_avatar", no_load)
    server = avatar_server(url="ws://127.0.0.1:7880", api_key="key", api_secret="secret", avatar=assets)
    server._setup_fnc(None)  # the prewarm each job runs: the given avatar is already there
    with pytest.raises(AssertionError, match="loaded again"):  # and without one, it would load
        avatar_server(url="ws://127.0.0.1:7880", api_key="key", api_secret="secret")._setup_fnc(None)
