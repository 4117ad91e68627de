"""Frames mode's real-time policy (``FramesJob``): a frame a listener could have heard more than
``speech.frames_max_lag_s`` ago is skipped when a newer one is ready, so an engine that fell behind (past
capacity, a slow client) catches up at once instead of sending every frame ever later; speech faster than
real time (a TTS) and an engine that keeps up lose nothing. Real generator and renderer, injected clock."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from livepuppet.engine.clock import ManualClock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.media.audio_io import read_audio
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.generator import SEGMENT_END, AudioChunk, TalkingHeadGenerator
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.streaming.protocol import FrameHeader, ServerEvent, Speaking
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.talk_job import FramesJob, JpegEncoder

RATE = 16_000
CHUNK = 320  # 20 ms


class Frames:
    """A frames-mode session on an injected clock: what it sent, and the events."""

    def __init__(self, prepared: PreparedSource, config: EngineConfig, model: AudioMouthModel,
                 max_lag_s: float) -> None:
        self.clock = ManualClock(10**9)
        self.generator = TalkingHeadGenerator(prepared, config, model, fps=25, audio_rate=RATE, clock=self.clock)
        self.sent: list[FrameHeader] = []
        self.events: list[ServerEvent] = []
        self.metrics = ServerMetrics.create()
        self.job = FramesJob("f", self.generator, config.render.crop_size, self.clock, self.metrics,
                             lambda header, jpeg: self.sent.append(header), self.events.append, max_lag_s)

    def drain(self, per_frame_s: float = 0.0) -> None:
        """Step while there is work, the sender taking each frame at once; the clock runs ``per_frame_s``
        per step (the engine's render time)."""
        while self.job.pending():
            self.job.step()
            self.job.sent()
            self.clock.advance(per_frame_s)


def speech(speech_wav: Path, seconds: float) -> np.ndarray:
    pcm = read_audio(speech_wav, RATE)
    return np.tile(pcm, int(np.ceil(seconds * RATE / len(pcm))))[:int(seconds * RATE)]


def test_an_engine_that_fell_behind_skips_the_past_frames_then_sends_every_one(
        prepared, config, model, speech_wav: Path) -> None:  # noqa: ANN001
    s = Frames(prepared, config, model, max_lag_s=0.25)
    pcm = speech(speech_wav, 3.0)
    for i in range(0, 2 * RATE, CHUNK):  # 2 s streamed at real time while the engine renders nothing
        s.generator.push_audio(AudioChunk(pcm[i:i + CHUNK], RATE))
        s.clock.advance(0.02)
    s.drain()
    first = s.sent[0]  # the oldest frame whose middle a listener heard at most 0.25 s ago (now: 2.0 s)
    assert 2.0 - 0.25 <= first.t + 0.02 < 2.0 - 0.25 + 0.04
    assert s.job.stats.frames_skipped == first.seq  # frames 0 … seq-1 were skipped, the rest all sent
    assert s.metrics.registry.get_sample_value("livepuppet_frames_dropped_total", {"where": "late"}) == first.seq
    assert [h.seq for h in s.sent] == list(range(first.seq, first.seq + len(s.sent))) and s.sent[-1].t >= 1.88
    assert s.events == [Speaking(state=True, t=0.0)]  # the skipped frames' events still went out
    newest = s.sent[-1]
    for i in range(2 * RATE, 3 * RATE, CHUNK):  # then the engine keeps up: every frame
        s.generator.push_audio(AudioChunk(pcm[i:i + CHUNK], RATE))
        s.clock.advance(0.02)
        s.drain(per_frame_s=0.01)
    seqs = [h.seq for h in s.sent]
    assert seqs == list(range(first.seq, first.seq + len(seqs))) and seqs[-1] >= newest.seq + 24
    assert s.job.stats.frames_skipped == first.seq


def test_speech_faster_than_real_time_loses_no_frame(prepared, config, model, speech_wav: Path) -> None:  # noqa: ANN001
    s = Frames(prepared, config, model, max_lag_s=0.25)
    pcm = speech(speech_wav, 3.0)
    for i in range(0, len(pcm), 4000):  # a TTS: 3 s of speech at once, in 250 ms messages
        s.generator.push_audio(AudioChunk(pcm[i:i + 4000], RATE))
    s.generator.push_audio(SEGMENT_END)
    s.drain(per_frame_s=0.035)  # the engine is just faster than real time (40 ms a frame)
    assert [h.seq for h in s.sent] == list(range(75)) and s.job.stats.frames_skipped == 0


def test_max_lag_zero_renders_every_frame_however_late(prepared, config, model, speech_wav: Path) -> None:  # noqa: ANN001
    s = Frames(prepared, config, model, max_lag_s=0.25)
    s.job.set_max_lag(0.0)  # the client's start said "frames": "all"
    pcm = speech(speech_wav, 1.0)
    for i in range(0, len(pcm), CHUNK):
        s.generator.push_audio(AudioChunk(pcm[i:i + CHUNK], RATE))
        s.clock.advance(0.02)
    s.clock.advance(5.0)  # an engine stalled for seconds
    s.drain()
    assert [h.seq for h in s.sent] == list(range(len(s.sent))) and len(s.sent) >= 23
    assert s.job.stats.frames_skipped == 0


def test_frames_are_jpegs_of_the_rgb_crop(prepared: PreparedSource) -> None:
    """What a frames-mode client decodes: the portrait crop itself (PSNR ≥ 33 dB), colours in RGB order."""
    crop = prepared.crop.copy()
    crop[:32, :32] = (255, 0, 0)  # a red corner must come back red, not blue
    data = JpegEncoder(crop.shape[1], crop.shape[0]).encode(crop)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"  # a whole JPEG
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert back.shape == crop.shape and cv2.PSNR(back, crop) >= 33.0
    assert np.all(back[4:28, 4:28, 0] > 200) and np.all(back[4:28, 4:28, 2] < 60)
    mirrored = JpegEncoder(crop.shape[1], crop.shape[0]).encode(crop[:, ::-1])  # a view, not contiguous
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(mirrored, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert cv2.PSNR(back, np.ascontiguousarray(crop[:, ::-1])) >= 33.0
