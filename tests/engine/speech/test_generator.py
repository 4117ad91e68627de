"""The talking-head generator on its own, no transport: audio in → frames at the configured fps on the audio
timeline with the same audio, segment ends after the last audio, clear_buffer → idle at once plus an
interrupted end, idle frames when nothing is queued; re-tracked lips follow the speech."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.clock import ManualClock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.generator import (
    SEGMENT_END,
    AudioChunk,
    BufferFull,
    TalkAudioFrame,
    TalkingHeadGenerator,
    TalkSegmentEnd,
    TalkVideoFrame,
)
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.errors import InputError


def make(prepared: PreparedSource, config: EngineConfig, model: AudioMouthModel, **kw) -> TalkingHeadGenerator:  # noqa: ANN003
    return TalkingHeadGenerator(prepared, config, model, clock=kw.pop("clock", ManualClock()), **kw)


def push_in_chunks(gen: TalkingHeadGenerator, pcm: np.ndarray, rate: int, chunk_s: float = 0.02) -> None:
    step = int(rate * chunk_s)
    for i in range(0, len(pcm), step):
        gen.push_audio(AudioChunk(pcm[i:i + step], rate))


def test_audio_in_frames_out_on_the_audio_timeline(prepared, config, model, speech_wav: Path) -> None:  # noqa: ANN001
    pcm = read_audio(speech_wav, 24000)
    gen = make(prepared, config, model, fps=25.0, audio_rate=24000)
    push_in_chunks(gen, pcm, 24000)
    gen.push_audio(SEGMENT_END)
    items: list = []
    while (step := gen.next_step(idle=False)) is not None:
        items += step.items()
    video = [i for i in items if isinstance(i, TalkVideoFrame)]
    audio = [i for i in items if isinstance(i, TalkAudioFrame)]
    ends = [i for i in items if isinstance(i, TalkSegmentEnd)]
    duration = len(pcm) / 24000
    assert len(video) == int(np.ceil(duration * 25))
    assert np.allclose([v.t for v in video], np.arange(len(video)) / 25)  # frame k starts at k/fps
    assert [a.t for a in audio] == [v.t for v in video]  # each frame carries the audio of its interval
    assert all(v.speech_t == pytest.approx(v.t + 0.02, abs=1e-6) for v in video[:-1])  # mouth at mid-slice
    got = np.concatenate([a.pcm for a in audio])
    assert abs(len(got) - len(pcm)) <= 24  # the same audio (the resampler is identity here) ...
    assert np.allclose(got[:len(pcm) - 24], pcm[:len(got) - 24][:len(got) - 24], atol=1e-6)  # ... sample for sample
    assert len(ends) == 1 and items[-1] is ends[0] and not ends[0].interrupted  # the end follows the last audio
    assert ends[0].played_s == pytest.approx(duration, abs=0.002)
    assert gen.idle() and gen.next_step(idle=False) is None


def test_any_sample_rate_and_int16(prepared, config, model) -> None:  # noqa: ANN001
    gen = make(prepared, config, model, fps=30.0, audio_rate=48000)
    tone = (0.3 * np.sin(2 * np.pi * 200 * np.arange(22050) / 22050) * 32767).astype(np.int16)  # 1 s at 22.05 kHz
    gen.push_audio(AudioChunk(tone, 22050))
    gen.push_audio(SEGMENT_END)
    steps = []
    while (step := gen.next_step(idle=False)) is not None:
        steps.append(step)
    total = sum(len(s.audio.pcm) for s in steps if s.audio is not None)
    assert total == pytest.approx(48000, abs=48)  # 1 s at the output rate
    assert len(steps) == 30 and all(len(s.audio.pcm) == 1600 for s in steps[:-1] if s.audio is not None)
    with pytest.raises(InputError, match="sample rate"):
        gen.push_audio(AudioChunk(tone, 1000))
    with pytest.raises(InputError, match="mono"):
        gen.push_audio(AudioChunk(np.zeros((10, 2), np.float32), 16000))


def test_idle_frames_when_nothing_is_queued(prepared, config, model, static_tracker) -> None:  # noqa: ANN001
    gen = make(prepared, config, model, fps=25.0)
    steps = [gen.next_step() for _ in range(50)]
    assert all(s is not None and s.audio is None and s.video.speech_t is None for s in steps)
    assert [s.video.t for s in steps] == pytest.approx(np.arange(50) / 25)  # type: ignore[union-attr]
    # Idle life, re-tracked: the head sways (the face's centre moves by pixels over 2 s) ...
    from livepuppet.engine.types import VideoFrame

    centres = [static_tracker.track(VideoFrame(s.video.pixels, 0, 0)).landmarks[:, :2].mean(axis=0)  # type: ignore[union-attr]
               for s in steps[::5]]
    assert np.ptp(np.array(centres), axis=0).max() > 1.0
    assert not gen.speaking and gen.next_step(idle=False) is None  # ... and frames mode makes none


def test_clear_buffer_returns_to_idle_at_once_with_an_interrupted_end(prepared, config, model,
                                                                       speech_wav: Path) -> None:  # noqa: ANN001
    clock = ManualClock()
    pcm = read_audio(speech_wav, 16000)
    gen = make(prepared, config, model, fps=25.0, audio_rate=16000, clock=clock)
    push_in_chunks(gen, pcm, 16000, 0.1)  # the whole utterance queued, like a TTS
    speaking = [gen.next_step() for _ in range(10)]
    assert all(s is not None and s.audio is not None for s in speaking)
    epoch = gen.epoch
    gen.clear_buffer()
    after = gen.next_step()
    assert after is not None
    assert len(after.before) == 1 and after.before[0].interrupted and after.before[0].epoch == epoch
    assert after.before[0].played_s == pytest.approx(10 / 25, abs=1e-3)
    assert after.audio is None and after.video.speech_t is None  # the very next frame is idle (≤ 1/fps)
    assert after.video.epoch == epoch + 1 and not gen.speaking and gen.queued_s == 0
    assert gen.stats.interrupt_ms >= 0
    # A new utterance starts at speech time 0 on the new epoch; nothing of the old one comes back.
    gen.push_audio(AudioChunk(pcm[:8000], 16000))
    gen.push_audio(SEGMENT_END)
    rest = []
    while (step := gen.next_step(idle=False)) is not None:
        rest += step.items()
    video = [i for i in rest if isinstance(i, TalkVideoFrame)]
    assert video[0].t == 0.0 and len(video) == 13 and all(v.epoch == epoch + 1 for v in video)
    assert isinstance(rest[-1], TalkSegmentEnd) and not rest[-1].interrupted


def test_clear_with_nothing_queued_emits_no_end(prepared, config, model) -> None:  # noqa: ANN001
    gen = make(prepared, config, model)
    gen.clear_buffer()
    step = gen.next_step()
    assert step is not None and step.before == ()


def test_preroll_and_underrun_hold_the_mouth(prepared, config, model) -> None:  # noqa: ANN001
    gen = make(prepared, config, model, fps=25.0, audio_rate=16000)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    gen.push_audio(AudioChunk(tone[:320], 16000))  # 20 ms: below the pre-roll, nothing plays yet
    first = gen.next_step()
    assert first is not None and first.audio is None and first.video.speech_t is None
    gen.push_audio(AudioChunk(tone[320:4000], 16000))  # enough for a few slices
    played = [gen.next_step() for _ in range(8)]
    speech = [s for s in played if s is not None and s.audio is not None]
    held = [s for s in played if s is not None and s.audio is None]
    assert speech and held and gen.stats.underruns == len(held)
    last_heard = speech[-1].video.speech_t + speech[-1].audio.duration_s / 2  # the end of the last slice heard
    assert all(h.video.speech_t == pytest.approx(last_heard) for h in held)  # the mouth holds, no snap to rest
    gen.push_audio(SEGMENT_END)
    ends = gen.pop_ends() + [e for s in iter(lambda: gen.next_step(idle=False), None) for e in s.items()
                             if isinstance(e, TalkSegmentEnd)]
    assert len(ends) == 1 and not ends[0].interrupted and ends[0].played_s == pytest.approx(0.25, abs=1e-3)


def test_empty_segment_still_ends(prepared, config, model) -> None:  # noqa: ANN001
    gen = make(prepared, config, model)
    gen.push_audio(SEGMENT_END)
    assert gen.ready()
    ends = gen.pop_ends()
    assert len(ends) == 1 and ends[0].played_s == 0.0 and gen.idle()


def test_buffer_is_bounded(prepared, model) -> None:  # noqa: ANN001
    from dataclasses import replace

    config = EngineConfig()
    config = replace(config, speech=replace(config.speech, max_buffer_s=1.0))
    gen = make(prepared, config, model, audio_rate=16000)
    gen.push_audio(AudioChunk(np.zeros(12000, np.float32), 16000))
    with pytest.raises(BufferFull, match="queued ahead of playback"):
        gen.push_audio(AudioChunk(np.zeros(8000, np.float32), 16000))
    assert gen.queued_s == pytest.approx(0.75)  # the refused chunk left nothing behind


def test_lips_follow_the_speech_retracked(prepared, config, model, speech_wav: Path,
                                          measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:  # noqa: ANN001
    """Re-tracked: frames showing the speech's loud parts have open lips, the silent tail has them at rest."""
    pcm = read_audio(speech_wav, 16000)
    gen = make(prepared, config, model, fps=25.0, audio_rate=16000)
    push_in_chunks(gen, pcm, 16000)
    gen.push_audio(SEGMENT_END)
    steps = list(iter(lambda: gen.next_step(idle=False), None))
    level = np.array([np.sqrt(np.mean(s.audio.pcm ** 2)) for s in steps])
    loud = [s for s, lv in zip(steps, level, strict=True) if lv > np.percentile(level, 80)][::3]
    idle = [gen.next_step() for _ in range(15)][-3:]
    rest = FaceFeatures.measure(prepared.neutral).lip_gap
    loud_gaps = [m.lip_gap for s in loud if (m := measure_face(s.video.pixels)) is not None]
    idle_gaps = [m.lip_gap for s in idle if s is not None and (m := measure_face(s.video.pixels)) is not None]
    assert len(loud_gaps) >= 4 and idle_gaps
    assert np.median(loud_gaps) > rest + 0.05 and max(idle_gaps) < rest + 0.05


def test_render_time_is_counted(prepared, config, model) -> None:  # noqa: ANN001
    """The engine time per frame (what a worker reports as its load) is measured on the generator's clock."""
    from livepuppet.engine.clock import MonotonicClock

    gen = make(prepared, config, model, clock=MonotonicClock())
    for _ in range(5):
        gen.next_step()
    per_frame = gen.stats.render_ms_total / gen.stats.frames
    assert gen.stats.frames == 5 and 0.1 < per_frame < 2000
    still = make(prepared, config, model)  # a manual clock that nobody advances: no time passes
    still.next_step()
    assert still.stats.render_ms_total == 0.0
