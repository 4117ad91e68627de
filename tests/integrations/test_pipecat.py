"""The Pipecat adapter, offline, with Pipecat's own test runner (``pipecat.tests.utils.run_test``) on the real
clock: real speech in as TTS audio frames → about fps RGB images per second of speech with the same audio,
re-tracked lips that close on p/b/m and open on open vowels, idle images between turns, the TTS's stop frame
after the last audio, an interruption → idle within 100 ms, emotion by a frame."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest

pytest.importorskip("pipecat", reason="the pipecat extra is not installed (pip install 'livepuppet[pipecat]')")

pytestmark = pytest.mark.realtime  # paced in real time, and its timing is asserted

from livepuppet.engine.face.expression import FaceFeatures  # noqa: E402
from livepuppet.integrations.pipecat import METADATA_KEY, AvatarEmotionFrame, LivePuppetVideoService  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from tests.integrations.speech_checks import assert_lips_follow  # noqa: E402

FPS = 25.0
OUT_RATE = 24000  # the pipeline's output rate (Pipecat's default); the TTS speaks at espeak's 22.05 kHz


class Recorder(FrameProcessor):  # type: ignore[misc]
    """Stamps every downstream frame with its arrival time (monotonic s) and passes it on."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[float, Frame]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self.got.append((time.monotonic(), frame))
        await self.push_frame(frame, direction)


def tts_frames(pcm: np.ndarray, rate: int, chunk_s: float = 0.1) -> list[Frame]:
    """An utterance as a TTS pushes it (faster than real time): started, int16 chunks, stopped."""
    data = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    step = int(rate * chunk_s)
    return [TTSStartedFrame(), *(TTSAudioRawFrame(audio=data[i:i + step].tobytes(), sample_rate=rate, num_channels=1)
                                 for i in range(0, len(data), step)), TTSStoppedFrame()]


def run(service: LivePuppetVideoService, frames: list[Frame]) -> list[tuple[float, Frame]]:
    recorder = Recorder()
    asyncio.run(run_test(Pipeline([service, recorder]), frames_to_send=frames, start_timeout=30.0))
    return recorder.got


def images(got: list[tuple[float, Frame]]) -> list[tuple[float, OutputImageRawFrame]]:
    return [(t, f) for t, f in got if isinstance(f, OutputImageRawFrame)]


def speech_t(frame: OutputImageRawFrame) -> float | None:
    return frame.metadata[METADATA_KEY]["speech_t"]


def pixels(frame: OutputImageRawFrame) -> np.ndarray:
    w, h = frame.size
    return np.frombuffer(frame.image, np.uint8).reshape(h, w, 3)


def test_speech_in_images_and_the_same_audio_out(assets, utterance, gc_pauses,  # noqa: ANN001
                                                 measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    short = utterance.audio[:int(0.8 * utterance.rate)]
    duration = len(utterance.audio) / utterance.rate
    # The second turn comes well after the first has played, even on a starved machine (rendering slower than
    # real time stretches playback: every frame carries one audio slice).
    frames = [SleepFrame(0.4), *tts_frames(utterance.audio, utterance.rate), SleepFrame(2 * duration + 2.0),
              *tts_frames(short, utterance.rate)]
    service = LivePuppetVideoService(assets=assets, fps=FPS, sample_rate=OUT_RATE)
    got = run(service, frames)
    stops = [i for i, (_, f) in enumerate(got) if isinstance(f, TTSStoppedFrame)]
    assert len(stops) == 2
    first = got[:stops[0] + 1]
    # About fps images per second of speech, each with its slice of the same audio.
    speech_images = [f for _, f in images(first) if speech_t(f) is not None]
    assert abs(len(speech_images) - duration * FPS) <= 3
    audio = [f for _, f in first if isinstance(f, TTSAudioRawFrame)]
    assert all(f.sample_rate == OUT_RATE for f in audio)
    out = np.concatenate([np.frombuffer(f.audio, np.int16) for f in audio]).astype(np.float32) / 32767
    assert abs(len(out) / OUT_RATE - duration) <= 0.1  # audio out = audio in
    from livepuppet.engine.speech.resampler import StreamingResampler

    ref = StreamingResampler(utterance.rate, OUT_RATE).push(utterance.audio)
    n = min(len(ref), len(out)) - 200
    assert np.corrcoef(ref[:n], out[:n])[0, 1] > 0.99  # the same samples, not just the same length
    # The TTS's stop frame comes after the utterance's last audio (nothing is cut off).
    last_audio = max(i for i, (_, f) in enumerate(got) if isinstance(f, TTSAudioRawFrame) and i < stops[0])
    assert last_audio < stops[0]
    # Images are RGB crops and come at fps in real time, idle ones between the turns (the video never freezes).
    arrivals = np.array([t for t, _ in images(got)])
    assert images(got)[0][1].format == "RGB"
    gaps = np.diff(arrivals)
    assert np.median(gaps) == pytest.approx(1 / FPS, abs=0.01)
    longest, t0 = int(np.argmax(gaps)), got[0][0]
    collections = [(round(t - t0, 2), round(ms)) for t, ms in gc_pauses]
    assert gaps[longest] < 0.5, (f"the video froze {gaps[longest]:.2f} s, {arrivals[longest] - t0:.2f} s in; "
                                 f"cycle collections (s in, ms): {collections}")
    resumed = next(t for t, f in images(got) if t > got[stops[0]][0] and speech_t(f) is not None)
    gap = [f for t, f in images(got) if got[stops[0]][0] + 0.1 < t < resumed]
    assert len(gap) >= 15 and all(speech_t(f) is None for f in gap)
    moving = np.stack([pixels(f) for f in gap]).astype(np.int16)
    assert np.abs(moving - moving[0]).max() > 10  # idle life (sway, blinks), not a frozen picture
    second = [f for _, f in got[stops[0]:] if isinstance(f, TTSAudioRawFrame)]
    assert sum(len(f.audio) // 2 for f in second) / OUT_RATE == pytest.approx(0.8, abs=0.1)
    # The EndFrame came right behind the second utterance: it waited until all of its audio was out.
    end = next(i for i, (_, f) in enumerate(got) if isinstance(f, EndFrame))
    assert max(i for i, (_, f) in enumerate(got) if isinstance(f, TTSAudioRawFrame)) < stops[1] < end
    # Re-tracked, the lips close on p/b/m and open on open vowels.
    rest = FaceFeatures.measure(assets.source.neutral).lip_gap
    shown = [(speech_t(f), pixels(f)) for f in speech_images]
    assert_lips_follow(utterance, shown, rest, measure_face)


def test_interruption_returns_to_idle_within_100_ms(assets, utterance) -> None:  # noqa: ANN001
    frames = [*tts_frames(np.tile(utterance.audio, 2), utterance.rate)[:-1], SleepFrame(2.0), InterruptionFrame(),
              SleepFrame(0.6)]
    got = run(LivePuppetVideoService(assets=assets, fps=FPS, sample_rate=OUT_RATE), frames)
    cut = next(t for t, f in got if isinstance(f, InterruptionFrame))
    before = [f for t, f in images(got) if t < cut]
    assert sum(speech_t(f) is not None for f in before) >= 5  # it was speaking
    after = images(got)
    first_idle = next(t for t, f in after if t > cut and speech_t(f) is None)
    assert first_idle - cut <= 0.1
    assert all(speech_t(f) is None for t, f in after if t > first_idle)  # and stays idle
    late_audio = [t for t, f in got if isinstance(f, TTSAudioRawFrame) and t > cut + 0.05]
    assert not late_audio  # queued speech dropped, not played later
    assert any(isinstance(f, EndFrame) for _, f in got)


def test_emotion_by_frame_and_by_method(assets) -> None:  # noqa: ANN001
    service = LivePuppetVideoService(assets=assets, fps=FPS, sample_rate=OUT_RATE)
    got = run(service, [SleepFrame(0.3), AvatarEmotionFrame(emotion="happy", intensity=1.0), SleepFrame(1.5)])
    imgs = images(got)
    neutral, happy = pixels(imgs[2][1]).astype(np.int16), pixels(imgs[-1][1]).astype(np.int16)
    assert np.abs(happy - neutral).mean() > 1.0  # the face changed expression
    assert not any(isinstance(f, AvatarEmotionFrame) for _, f in got)  # consumed by the avatar
    from livepuppet.errors import InputError

    with pytest.raises(InputError, match="emotion must be one of"):
        LivePuppetVideoService(assets=assets).set_emotion("gleeful")
