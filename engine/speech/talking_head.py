"""Speech audio → an animated portrait: the audio model and prosody fill a speech timeline, the speech
motion adds life and emotion, the animator renders. Shared by ``livepuppet speak`` and the server.

Times: *speech time* counts seconds of audio received since the start (or the last interrupt), across
utterances; the caller says which speech instant each frame shows (the playback position), or None
while nothing is being said. *Wall time* drives blinks, sway and gaze.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
from livepuppet.engine.clock import Clock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.pipeline import AnimatedFrame, Animator
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.mouth_model import SAMPLE_RATE, AudioMouthModel, MouthFrame
from livepuppet.engine.speech.prosody import ProsodyStream
from livepuppet.engine.speech.speech_motion import SpeechMotion
from livepuppet.engine.speech.timeline import SpeechSample, SpeechTimeline

# Speech motion is smooth by construction; the webcam's One Euro filter would only add lag to the lips.
SPEECH_FILTER_CUTOFF_HZ = 20.0


def speech_config(config: EngineConfig) -> EngineConfig:
    """``config`` with the motion filter opened up for audio-driven motion."""
    cutoff = max(config.retarget.filter_min_cutoff, SPEECH_FILTER_CUTOFF_HZ)
    return replace(config, retarget=replace(config.retarget, filter_min_cutoff=cutoff, filter_beta=0.0,
                                            filter_lead=0.0, head_filter_ratio=1.0, slow_filter_ratio=1.0))


class TalkingHead:
    """One talking portrait. ``push``/``end_utterance``/``interrupt`` may be called from one thread while
    ``render`` runs on another (the timeline is locked); each method itself is not re-entrant."""

    def __init__(self, source: PreparedSource, config: EngineConfig, model: AudioMouthModel,
                 clock: Clock | None = None) -> None:
        self._animator = Animator(source, speech_config(config), clock)
        self._mouth = model.stream()
        self._prosody = ProsodyStream()
        self.timeline = SpeechTimeline()
        self._motion = SpeechMotion(config.speech, rest_lip_gap=FaceFeatures.measure(source.neutral).lip_gap)
        self._motion_lock = threading.Lock()
        self._offset_s = 0.0  # speech time at which the current utterance started
        self._utterance_samples = 0
        self.lookahead_s = model.lookahead_s

    @property
    def received_s(self) -> float:
        """Speech time up to which audio has been pushed."""
        return self._offset_s + self._utterance_samples / SAMPLE_RATE

    def push(self, pcm: np.ndarray) -> list[MouthFrame]:
        """Audio ``(n,) f32 [-1, 1] mono 16 kHz`` → the new mouth frames (speech-time stamped)."""
        frames = self._shift(self._mouth.push(pcm))
        self._utterance_samples += len(pcm)
        self.timeline.add_mouth(frames)
        self.timeline.add_prosody(self._prosody.push(pcm))
        return frames

    def end_utterance(self) -> list[MouthFrame]:
        """The speaker stopped: emit the frames the look-ahead was holding back."""
        frames = self._shift(self._mouth.flush())
        self.timeline.add_mouth(frames)
        self._offset_s += self._utterance_samples / SAMPLE_RATE
        self._utterance_samples = 0
        return frames

    def interrupt(self) -> None:
        """Barge-in: drop everything heard so far; speech time restarts at 0."""
        self._mouth.reset()
        self._prosody.reset()
        self.timeline.clear()
        self._offset_s = 0.0
        self._utterance_samples = 0

    def set_emotion(self, name: str, intensity: float) -> None:
        with self._motion_lock:
            self._motion.set_emotion(name, intensity)

    def sample(self, speech_t: float | None) -> SpeechSample | None:
        return None if speech_t is None else self.timeline.sample(speech_t)

    def render(self, speech_t: float | None, wall_t: float, seq: int = 0, full: bool = False) -> AnimatedFrame:
        """The portrait at wall time ``wall_t`` showing speech instant ``speech_t`` (None: not speaking)."""
        with self._motion_lock:
            motion = self._motion.motion(wall_t, self.sample(speech_t), seq)
        return self._animator.animate(motion, full=full)

    def _shift(self, frames: list[MouthFrame]) -> list[MouthFrame]:
        if not self._offset_s:
            return frames
        return [replace(f, t=f.t + self._offset_s) for f in frames]
