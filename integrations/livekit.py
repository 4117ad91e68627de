"""LiveKit Agents avatar: :class:`LivePuppetVideoGenerator` is a ``livekit.agents.voice.avatar.VideoGenerator``
over the talking-head generator (audio in; ``rtc.VideoFrame`` every 1/fps, the same audio as ``rtc.AudioFrame``s
and ``AudioSegmentEnd``s out, idle life between utterances), for ``AvatarRunner``, which pulls frames while it
pushes audio and paces them through ``rtc.AVSynchronizer``.

:class:`AvatarSession` wires it to an ``AgentSession``, in one of two modes:

* ``"in-process"``: the agent's own job runs the avatar (``QueueAudioOutput`` → ``AvatarRunner``); the agent
  publishes the face and voice itself. Simplest; the agent's machine pays for the rendering.
* ``"worker"``: the agent dispatches a ``livepuppet-avatar`` job (see :func:`avatar_server`, the
  ``livepuppet livekit-worker`` command) and streams its TTS audio to it over LiveKit's avatar data-stream
  protocol (``DataStreamAudioOutput``: audio byte streams, ``lk.clear_buffer``, ``lk.playback_finished``). The
  avatar joins as its own participant publishing on behalf of the agent; LiveKit's dispatcher places jobs by
  the load each worker reports (engine time per frame against the frame budget, :class:`EngineLoad`).

Needs the ``livekit`` extra: ``pip install 'livepuppet[livekit]'``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.speech.generator import (
    SEGMENT_END,
    AudioChunk,
    TalkAudioFrame,
    TalkingHeadGenerator,
    TalkSegmentEnd,
    TalkVideoFrame,
)
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.errors import DependencyError, InputError
from livepuppet.integrations.avatar import AvatarAssets, Portrait, check_emotion, load_avatar, open_talk_stream
from livepuppet.streaming.talk_stream import Pacer, TalkStream

try:
    from livekit import api, rtc
    from livekit.agents import AgentServer, JobContext, JobExecutorType, JobProcess, JobRequest, get_job_context
    from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF
    from livekit.agents.voice import AgentSession
    from livekit.agents.voice.avatar import (
        AudioReceiver,
        AudioSegmentEnd,
        AvatarOptions,
        AvatarRunner,
        DataStreamAudioOutput,
        DataStreamAudioReceiver,
        QueueAudioOutput,
        VideoGenerator,
    )
    from livekit.agents.voice.avatar import AvatarSession as _AvatarSessionBase
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise DependencyError("the LiveKit integration needs livekit-agents: pip install 'livepuppet[livekit]'") from exc

log = logging.getLogger(__name__)

AGENT_NAME = "livepuppet-avatar"  # the worker's agent name: what an agent dispatches
DEFAULT_AVATAR_IDENTITY = "livepuppet-avatar"
PROVIDER = "livepuppet"


class EngineLoad:
    """A worker's real load: the engine time its avatars spend per second of wall time, as a fraction of
    the machine's cores (1.0 = every core busy rendering). Each avatar costs ``ms per frame × fps / 1000``."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = max(1, cores or os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._generators: dict[int, TalkingHeadGenerator] = {}

    def add(self, generator: TalkingHeadGenerator) -> None:
        with self._lock:
            self._generators[id(generator)] = generator

    def remove(self, generator: TalkingHeadGenerator) -> None:
        with self._lock:
            self._generators.pop(id(generator), None)

    @property
    def sessions(self) -> int:
        with self._lock:
            return len(self._generators)

    def busy_cores(self) -> float:
        """Sum over avatars of (mean engine ms per frame) × fps / 1000: cores kept busy rendering."""
        with self._lock:
            gens = list(self._generators.values())
        busy = 0.0
        for g in gens:
            if g.stats.frames:
                busy += g.stats.render_ms_total / g.stats.frames * g.fps / 1000.0
        return busy

    def __call__(self) -> float:
        """The load LiveKit's dispatcher reads (``load_fnc``): busy cores ÷ cores, in [0, 1]."""
        return min(1.0, self.busy_cores() / self.cores)


class LivePuppetVideoGenerator(VideoGenerator):  # type: ignore[misc]
    """A LiveKit ``VideoGenerator`` for one avatar. ``portrait``: an image path, an ``(H, W, 3) u8 RGB``
    array or None (the bundled photo); loading blocks (0.1–1 s), so pass ``assets`` (from
    :func:`~livepuppet.integrations.avatar.load_avatar`, loaded once) to make a new session cheap.
    ``sample_rate``: the audio it yields (the input may have any rate). Video frames are RGBA (what LiveKit's
    video source takes without conversion), ``size × size`` (the face crop)."""

    def __init__(self, portrait: Portrait = None, *, fps: float = 25.0, sample_rate: int = 24000,
                 config: EngineConfig | None = None, model: AudioMouthModel | None = None,
                 assets: AvatarAssets | None = None, emotion: tuple[str, float] | None = None,
                 pacer: Pacer | None = None, load: EngineLoad | None = None) -> None:
        self.assets = assets or load_avatar(portrait, config, model)
        self.fps = float(fps)
        self.sample_rate = int(sample_rate)
        self._stream: TalkStream = open_talk_stream(
            self.assets, fps=self.fps, audio_rate=self.sample_rate, pacer=pacer,
            clock=getattr(pacer, "clock", None), emotion=None if emotion is None else check_emotion(*emotion))
        self._load = load
        if load is not None:
            load.add(self._stream.generator)

    @property
    def size(self) -> int:
        """Side of the square video frames (the face crop)."""
        return int(self.assets.source.crop.shape[0])

    @property
    def generator(self) -> TalkingHeadGenerator:
        return self._stream.generator

    def options(self) -> AvatarOptions:
        """What ``AvatarRunner`` needs to publish this avatar's tracks."""
        return AvatarOptions(video_width=self.size, video_height=self.size, video_fps=self.fps,
                             audio_sample_rate=self.sample_rate, audio_channels=1)

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        """Queue TTS audio (any rate, interleaved channels are mixed to mono) or end the utterance. Waits when
        more than ``speech.max_buffer_s`` is queued."""
        if isinstance(frame, AudioSegmentEnd):
            await self._stream.push_audio(SEGMENT_END)
            return
        pcm = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        if len(pcm):
            await self._stream.push_audio(AudioChunk(pcm, int(frame.sample_rate)))

    def clear_buffer(self) -> None:
        """Interrupt: queued speech is dropped; an ``AudioSegmentEnd`` and an idle frame follow at once."""
        self._stream.clear_buffer()

    def set_emotion(self, emotion: str, intensity: float = 0.7) -> None:
        """Ease towards ``emotion`` (neutral, happy, sad, surprised, angry) at ``intensity`` in [0, 1]."""
        self._stream.set_emotion(*check_emotion(emotion, intensity))

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        loop = asyncio.get_running_loop()
        async for item in self._stream:
            if isinstance(item, TalkVideoFrame):
                rgba = await loop.run_in_executor(None, cv2.cvtColor, item.pixels, cv2.COLOR_RGB2RGBA)
                h, w = rgba.shape[:2]
                yield rtc.VideoFrame(w, h, rtc.VideoBufferType.RGBA, rgba.tobytes())
            elif isinstance(item, TalkAudioFrame):
                if item.epoch != self._stream.generator.epoch:
                    continue  # planned just before an interrupt: never play stale speech
                pcm = (np.clip(item.pcm, -1.0, 1.0) * 32767.0).astype(np.int16)
                yield rtc.AudioFrame(pcm.tobytes(), item.sample_rate, 1, len(pcm))
            elif isinstance(item, TalkSegmentEnd):
                yield AudioSegmentEnd()

    async def aclose(self) -> None:
        """Stop the stream and free its threads."""
        if self._load is not None:
            self._load.remove(self._stream.generator)
        await self._stream.aclose()


@dataclass(frozen=True, slots=True)
class AvatarJob:
    """What an agent asks a ``livepuppet-avatar`` worker for (the dispatch metadata, JSON)."""

    agent_identity: str
    avatar_identity: str = DEFAULT_AVATAR_IDENTITY
    fps: float = 25.0
    sample_rate: int = 24000
    emotion: str = "neutral"
    emotion_intensity: float = 0.7

    def to_json(self) -> str:
        return json.dumps({"agent_identity": self.agent_identity, "avatar_identity": self.avatar_identity,
                           "fps": self.fps, "sample_rate": self.sample_rate, "emotion": self.emotion,
                           "emotion_intensity": self.emotion_intensity})

    @classmethod
    def from_json(cls, text: str) -> AvatarJob:
        """Parse dispatch metadata; missing or malformed fields are a clear :class:`InputError`."""
        try:
            data = json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            raise InputError(f"avatar job metadata is not JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("agent_identity"), str):
            raise InputError("avatar job metadata needs a string 'agent_identity' (the agent the avatar speaks for)")
        unknown = set(data) - {"agent_identity", "avatar_identity", "fps", "sample_rate", "emotion",
                               "emotion_intensity"}
        if unknown:
            raise InputError(f"avatar job metadata has unknown keys: {', '.join(sorted(unknown))}")
        job = cls(**data)
        check_emotion(job.emotion, job.emotion_intensity)
        return job


class AvatarSession(_AvatarSessionBase):  # type: ignore[misc]
    """The agent side: ``await AvatarSession(portrait=...).start(session, room=ctx.room)`` before
    ``session.start(...)``. In-process mode renders in this job; worker mode dispatches the avatar to a
    ``livepuppet livekit-worker`` (needs the LiveKit API: ``LIVEKIT_URL``/``LIVEKIT_API_KEY``/
    ``LIVEKIT_API_SECRET``, or the job context's)."""

    def __init__(self, *, portrait: Portrait = None, mode: Literal["in-process", "worker"] = "in-process",
                 fps: float = 25.0, sample_rate: int = 24000, assets: AvatarAssets | None = None,
                 avatar_identity: str = DEFAULT_AVATAR_IDENTITY, agent_name: str = AGENT_NAME,
                 emotion: tuple[str, float] = ("neutral", 0.7)) -> None:
        super().__init__()
        if mode not in ("in-process", "worker"):
            raise InputError(f"avatar mode must be 'in-process' or 'worker', not {mode!r}")
        self.mode = mode
        self._portrait = portrait
        self._assets = assets
        self._fps = float(fps)
        self._sample_rate = int(sample_rate)
        self._identity = avatar_identity
        self._agent_name = agent_name
        self._emotion = check_emotion(*emotion)
        self.runner: AvatarRunner | None = None
        self.generator: LivePuppetVideoGenerator | None = None

    @property
    def avatar_identity(self) -> str:
        return self._identity

    @property
    def provider(self) -> str:
        return PROVIDER

    async def start(self, agent_session: AgentSession, room: rtc.Room, *,
                    lkapi: api.LiveKitAPI | None = None) -> None:
        if self.mode == "in-process":
            await self._start_in_process(agent_session, room)
        else:
            await self._start_worker(agent_session, room, lkapi)
        await super().start(agent_session, room)

    async def _start_in_process(self, agent_session: AgentSession, room: rtc.Room) -> None:
        loop = asyncio.get_running_loop()
        assets = self._assets or await loop.run_in_executor(None, load_avatar, self._portrait)
        self.generator = LivePuppetVideoGenerator(assets=assets, fps=self._fps, sample_rate=self._sample_rate,
                                                  emotion=self._emotion)
        # The agent publishes the avatar itself: the identity to wait for is its own.
        self._identity = room.local_participant.identity
        audio = QueueAudioOutput(sample_rate=self._sample_rate)
        agent_session.output.audio = audio
        self.runner = AvatarRunner(room, audio_recv=audio, video_gen=self.generator,
                                   options=self.generator.options())
        await self.runner.start()

    async def _start_worker(self, agent_session: AgentSession, room: rtc.Room,
                            lkapi: api.LiveKitAPI | None) -> None:
        job = AvatarJob(agent_identity=room.local_participant.identity, avatar_identity=self._identity,
                        fps=self._fps, sample_rate=self._sample_rate, emotion=self._emotion[0],
                        emotion_intensity=self._emotion[1])
        request = api.CreateAgentDispatchRequest(agent_name=self._agent_name, room=room.name,
                                                 metadata=job.to_json())
        if lkapi is not None:
            await lkapi.agent_dispatch.create_dispatch(request)
        else:
            ctx = get_job_context(required=False)
            if ctx is not None:
                await ctx.api.agent_dispatch.create_dispatch(request)
            else:
                async with api.LiveKitAPI() as own:
                    await own.agent_dispatch.create_dispatch(request)
        agent_session.output.audio = DataStreamAudioOutput(room, destination_identity=self._identity,
                                                           sample_rate=self._sample_rate,
                                                           wait_remote_track=rtc.TrackKind.KIND_VIDEO)

    async def aclose(self) -> None:
        if self.runner is not None:
            await self.runner.aclose()
            self.runner = None
        if self.generator is not None:
            await self.generator.aclose()
            self.generator = None
        await super().aclose()


# -- the avatar worker ---------------------------------------------------------------------------------------

async def accept_avatar_job(request: JobRequest) -> None:
    """A dispatched avatar job: join as the requested identity, publishing on behalf of the agent."""
    try:
        job = AvatarJob.from_json(request.job.metadata)
    except InputError as exc:
        log.warning("rejecting avatar job %s: %s", request.id, exc)
        await request.reject()
        return
    await request.accept(identity=job.avatar_identity, name="livepuppet avatar",
                         attributes={ATTRIBUTE_PUBLISH_ON_BEHALF: job.agent_identity})


def avatar_server(*, url: str, api_key: str, api_secret: str, portrait: Portrait = None,
                  config: EngineConfig | None = None, load: EngineLoad | None = None,
                  load_threshold: float = 0.8, avatar: AvatarAssets | None = None) -> AgentServer:
    """An agent server named ``livepuppet-avatar``: each job renders one avatar for the agent that
    dispatched it, fed over the data-stream avatar protocol; it reports :class:`EngineLoad` so LiveKit stops
    sending jobs past ``load_threshold``. Jobs run as threads of this process and share one loaded portrait
    (``avatar``, or loaded from ``portrait`` when the server starts)."""
    meter = load or EngineLoad()
    assets: dict[str, AvatarAssets] = {} if avatar is None else {"avatar": avatar}
    guard = threading.Lock()

    def prewarm(_: JobProcess) -> None:
        with guard:
            if "avatar" not in assets:
                assets["avatar"] = load_avatar(portrait, config)

    async def entrypoint(ctx: JobContext) -> None:
        job = AvatarJob.from_json(ctx.job.metadata)
        await ctx.connect()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, prewarm, ctx.proc)
        generator = LivePuppetVideoGenerator(assets=assets["avatar"], fps=job.fps, sample_rate=job.sample_rate,
                                             emotion=(job.emotion, job.emotion_intensity), load=meter)
        receiver: AudioReceiver = DataStreamAudioReceiver(ctx.room, sender_identity=job.agent_identity)
        runner = AvatarRunner(ctx.room, audio_recv=receiver, video_gen=generator, options=generator.options())

        async def close() -> None:
            await runner.aclose()
            await generator.aclose()

        ctx.add_shutdown_callback(close)
        await runner.start()

    server = AgentServer(ws_url=url, api_key=api_key, api_secret=api_secret,
                         job_executor_type=JobExecutorType.THREAD, load_fnc=meter, load_threshold=load_threshold,
                         setup_fnc=prewarm)
    server.rtc_session(entrypoint, agent_name=AGENT_NAME, on_request=accept_avatar_job)
    return server
