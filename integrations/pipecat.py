"""A Pipecat frame processor that gives the bot a face: place it after the TTS. It takes the TTS audio
(``TTSAudioRawFrame``, any sample rate), and pushes downstream, in real time, one ``OutputImageRawFrame`` (RGB)
every 1/fps and the same audio as ``TTSAudioRawFrame``s, each image just before the audio it shows, with
``sync_with_audio`` set so the output transport displays it once the audio before it has been sent. Between
utterances it pushes idle frames (blinks, sway). The engine runs off the event loop (the talk stream's
threads).

Frame order is kept: a frame that arrives after some TTS audio is passed on once that audio has been pushed
(``TTSStoppedFrame`` once its utterance's last audio is out, ``EndFrame`` once everything received is out).
``InterruptionFrame`` drops the queued speech and held frames; the next image is idle (≤ one frame later).

Needs the ``pipecat`` extra: ``pip install 'livepuppet[pipecat]'``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.speech.generator import (
    SEGMENT_END,
    AudioChunk,
    TalkAudioFrame,
    TalkSegmentEnd,
    TalkVideoFrame,
)
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.errors import DependencyError
from livepuppet.integrations.avatar import AvatarAssets, Portrait, check_emotion, load_avatar, open_talk_stream
from livepuppet.streaming.talk_stream import Pacer, TalkStream

try:
    from pipecat.frames.frames import (
        CancelFrame,
        ControlFrame,
        EndFrame,
        Frame,
        InterruptionFrame,
        OutputImageRawFrame,
        StartFrame,
        SystemFrame,
        TTSAudioRawFrame,
        TTSStoppedFrame,
    )
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise DependencyError("the Pipecat integration needs pipecat-ai: pip install 'livepuppet[pipecat]'") from exc

log = logging.getLogger(__name__)

METADATA_KEY = "livepuppet"  # image frames carry {"seq", "t", "speech_t", "epoch"} under this metadata key


@dataclass
class AvatarEmotionFrame(ControlFrame):
    """Ease the avatar towards an emotion (neutral, happy, sad, surprised, angry) at ``intensity`` in [0, 1];
    applied when it reaches the avatar, in order with the frames around it."""

    emotion: str = "neutral"
    intensity: float = 0.7


@dataclass(slots=True)
class _Held:
    """A frame waiting for the audio that arrived before it: ``segment`` utterances ended before it and
    ``audio_s`` seconds of the current one were received; ``barrier``: it waits for its utterance's end."""

    frame: Frame
    direction: FrameDirection
    segment: int
    audio_s: float
    barrier: bool


class LivePuppetVideoService(FrameProcessor):  # type: ignore[misc]
    """The talking face of a Pipecat bot. ``portrait``: an image path, an ``(H, W, 3) u8 RGB`` array or None
    (the bundled photo); ``sample_rate``: the audio pushed downstream (default: the pipeline's output rate).
    Loading (face tracking, model) happens in :meth:`setup`, off the event loop; pass ``assets`` (from
    :func:`~livepuppet.integrations.avatar.load_avatar`) to share one load between sessions."""

    def __init__(self, *, portrait: Portrait = None, fps: float = 25.0, sample_rate: int | None = None,
                 config: EngineConfig | None = None, model: AudioMouthModel | None = None,
                 assets: AvatarAssets | None = None, emotion: tuple[str, float] | None = None,
                 sync_with_audio: bool = True, pacer: Pacer | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._portrait = portrait
        self._fps = float(fps)
        self._sample_rate = sample_rate
        self._config = config
        self._model = model
        self._assets = assets
        self._emotion = None if emotion is None else check_emotion(*emotion)
        self._sync = sync_with_audio
        self._pacer = pacer
        self._stream: TalkStream | None = None
        self._output_task: asyncio.Task[None] | None = None
        self._held: deque[_Held] = deque()
        self._in_segment = 0  # SEGMENT_ENDs pushed this epoch
        self._in_s = 0.0  # audio received in the current utterance (s)
        self._open = False  # the current utterance has audio and no end yet
        self._out_segment = 0  # utterance ends pushed downstream this epoch
        self._out_s = 0.0  # audio pushed downstream in the current utterance (s)
        self._drained = asyncio.Event()

    @property
    def stream(self) -> TalkStream | None:
        """The talk stream once set up (None before :meth:`setup`)."""
        return self._stream

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]  # as Pipecat does
        await super().setup(setup)
        loop = asyncio.get_running_loop()
        if self._assets is None:
            self._assets = await loop.run_in_executor(None, load_avatar, self._portrait, self._config, self._model)
        rate = int(self._sample_rate or setup.audio_out_sample_rate)
        self._stream = open_talk_stream(self._assets, fps=self._fps, audio_rate=rate, pacer=self._pacer,
                                        emotion=self._emotion)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._stop()

    def set_emotion(self, emotion: str, intensity: float = 0.7) -> None:
        """Ease towards ``emotion`` (neutral, happy, sad, surprised, angry) at ``intensity`` in [0, 1]."""
        if self._stream is None:  # before setup: applied when the stream opens
            self._emotion = check_emotion(emotion, intensity)
            return
        self._stream.set_emotion(emotion, intensity)

    # -- input ---------------------------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if self._output_task is None:
                self._output_task = self.create_task(self._output())
        elif direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, TTSAudioRawFrame):
            await self._push_audio(frame)
        elif isinstance(frame, InterruptionFrame):
            self._interrupt()
            await self.push_frame(frame, direction)
        elif isinstance(frame, AvatarEmotionFrame):
            self.set_emotion(frame.emotion, frame.intensity)
        elif isinstance(frame, TTSStoppedFrame):
            await self._end_utterance()
            await self._hold(frame, direction, barrier=True)
        elif isinstance(frame, EndFrame):
            await self._finish()
            await self._stop()
            await self.push_frame(frame, direction)
        elif isinstance(frame, CancelFrame):
            await self._stop()
            await self.push_frame(frame, direction)
        elif isinstance(frame, SystemFrame):
            await self.push_frame(frame, direction)
        else:
            await self._hold(frame, direction, barrier=False)

    async def _push_audio(self, frame: TTSAudioRawFrame) -> None:
        assert self._stream is not None
        pcm = np.frombuffer(frame.audio, dtype=np.int16)
        if frame.num_channels > 1:  # mono for the engine: average the channels
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        if not len(pcm):
            return
        self._drained.clear()
        await self._stream.push_audio(AudioChunk(pcm, int(frame.sample_rate)))
        self._in_s += len(pcm) / frame.sample_rate
        self._open = True

    async def _end_utterance(self) -> None:
        assert self._stream is not None
        await self._stream.push_audio(SEGMENT_END)
        self._in_segment += 1
        self._in_s = 0.0
        self._open = False

    async def _hold(self, frame: Frame, direction: FrameDirection, barrier: bool) -> None:
        """Pass ``frame`` on once the audio received before it is out (at once if there is none)."""
        segment = self._in_segment - 1 if barrier else self._in_segment
        self._held.append(_Held(frame, direction, segment, self._in_s, barrier))
        await self._release()

    async def _release(self) -> None:
        tolerance = 0.5 / self._fps  # resampling may round an utterance's audio by a few samples
        while self._held:
            head = self._held[0]
            done = self._out_segment > head.segment or (
                not head.barrier and self._out_segment == head.segment and self._out_s >= head.audio_s - tolerance)
            if not done:
                return
            self._held.popleft()
            await self.push_frame(head.frame, head.direction)

    def _interrupt(self) -> None:
        """Barge-in: queued speech and the frames held behind it go; the next image is idle."""
        if self._stream is not None:
            self._stream.clear_buffer()
        kept = [h for h in self._held if not h.frame.interruptible]
        self._held.clear()
        for h in kept:  # uninterruptible frames survive, released at once
            self._held.append(_Held(h.frame, h.direction, -1, 0.0, False))
        self._in_segment = self._out_segment = 0
        self._in_s = self._out_s = 0.0
        self._open = False
        self._drained.set()

    async def _finish(self) -> None:
        """EndFrame: end the open utterance and wait until everything received has been pushed."""
        if self._stream is None or self._output_task is None:
            return
        if self._open:
            await self._end_utterance()
        output = self._output_task
        while (self._held or not self._stream.generator.idle()) and not output.done():
            self._drained.clear()
            drained = asyncio.ensure_future(self._drained.wait())
            try:
                await asyncio.wait((drained, output), return_when=asyncio.FIRST_COMPLETED)
            finally:
                drained.cancel()
        if output.done() and self._held:  # the output failed (logged by Pipecat): pass the held frames on
            while self._held:
                held = self._held.popleft()
                await self.push_frame(held.frame, held.direction)

    async def _stop(self) -> None:
        if self._output_task is not None:
            await self.cancel_task(self._output_task)
            self._output_task = None
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

    # -- output --------------------------------------------------------------------------------------------

    async def _output(self) -> None:
        """Push the stream's frames downstream as they come due (real time), then release held frames."""
        assert self._stream is not None
        async for item in self._stream:
            if isinstance(item, TalkVideoFrame):
                image = OutputImageRawFrame(image=item.pixels.tobytes(), size=(item.pixels.shape[1],
                                                                              item.pixels.shape[0]), format="RGB")
                image.sync_with_audio = self._sync
                image.pts = item.pts
                image.metadata[METADATA_KEY] = {"seq": item.seq, "t": item.t, "speech_t": item.speech_t,
                                                "epoch": item.epoch}
                await self.push_frame(image)
            elif isinstance(item, TalkAudioFrame):
                if item.epoch != self._stream.generator.epoch:
                    continue  # planned just before an interrupt: never play stale speech
                pcm = (np.clip(item.pcm, -1.0, 1.0) * 32767.0).astype(np.int16)
                audio = TTSAudioRawFrame(audio=pcm.tobytes(), sample_rate=item.sample_rate, num_channels=1)
                audio.pts = int(round(item.t * 1e9))
                await self.push_frame(audio)
                self._out_s += item.duration_s
            elif isinstance(item, TalkSegmentEnd) and not item.interrupted:
                self._out_segment += 1
                self._out_s = 0.0
            await self._release()
            if not self._held and self._stream.generator.idle():
                self._drained.set()
