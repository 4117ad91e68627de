"""The talking head on real speech (espeak-ng, a voice the audio model never trained on): re-tracked,
the rendered lips close on p/b/m and open on open vowels; utterances and interrupts keep the timeline."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.mouth_model import SAMPLE_RATE, VISEMES, AudioMouthModel
from livepuppet.engine.speech.resampler import StreamingResampler
from livepuppet.engine.speech.talking_head import TalkingHead

TEXT = "Papa bought a map. Bob may pop by the barn. Mama, a bad apple!"
HELD_OUT_VOICE = "en-us+f5"  # a variant kept out of training (see assets/audio_mouth.md)


@pytest.fixture(scope="module")
def utterance():  # noqa: ANN201
    espeak = pytest.importorskip("livepuppet.export.audio.espeak")
    if not espeak.espeak_available():
        pytest.fail("libespeak-ng is missing: apt-get install espeak-ng libespeak-ng1 (CI installs it)")
    return espeak.EspeakSynth().synthesize(TEXT, espeak.VoiceSettings(HELD_OUT_VOICE, rate=150))


def rendered_lip_gaps(utterance, model: AudioMouthModel, prepared: PreparedSource, config: EngineConfig,  # noqa: ANN001
                      measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> tuple[list[float], list[float]]:
    """Lip gaps of the rendered talking head, re-tracked, at the centres of p/b/m and open-vowel segments."""
    pcm = StreamingResampler(utterance.rate, SAMPLE_RATE).push(utterance.audio)
    head = TalkingHead(prepared, config, model)
    head.push(pcm)
    head.end_utterance()

    def gap_at(t: float) -> float:
        head.render(t - 0.08, t - 0.08)  # let the motion settle as in a stream
        features = measure_face(head.render(t, t).crop.pixels)
        assert features is not None
        return features.lip_gap

    pp = [s for s in utterance.segments if VISEMES[s.viseme] == "PP" and s.end - s.start >= 0.04]
    aa = [s for s in utterance.segments if VISEMES[s.viseme] == "aa" and s.end - s.start >= 0.05]
    return [gap_at((s.start + s.end) / 2) for s in pp], [gap_at((s.start + s.end) / 2) for s in aa]


def test_lips_close_on_bilabials_and_open_on_vowels(utterance, model: AudioMouthModel, prepared: PreparedSource,
                                                    config: EngineConfig,
                                                    measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    rest = FaceFeatures.measure(prepared.neutral).lip_gap  # this photo's lips are parted at rest
    closed, opened = rendered_lip_gaps(utterance, model, prepared, config, measure_face)
    assert len(closed) >= 8 and len(opened) >= 5
    recall = np.mean([g < 0.5 * rest for g in closed])
    print(f"rest gap {rest:.3f}; bilabial gaps {np.round(closed, 3)}; open-vowel gaps {np.round(opened, 3)}; "
          f"closure recall {recall:.2f}")
    assert recall >= 0.75, f"lips closed on only {recall:.0%} of p/b/m"
    assert np.median(opened) > rest + 0.08 and np.median(opened) > np.median(closed) + 0.12


def test_timeline_spans_utterances_and_restarts_on_interrupt(model: AudioMouthModel, prepared: PreparedSource,
                                                             config: EngineConfig) -> None:
    head = TalkingHead(prepared, config, model)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / SAMPLE_RATE)).astype(np.float32)
    first = head.push(tone) + head.end_utterance()
    second = head.push(tone) + head.end_utterance()
    assert first[0].t == pytest.approx(0.005) and second[0].t == pytest.approx(0.505)
    assert head.received_s == pytest.approx(1.0) and head.timeline.mouth_until == pytest.approx(1.0)
    head.interrupt()
    assert head.received_s == 0.0 and head.timeline.mouth_until == 0.0
    third = head.push(tone)
    assert third[0].t == pytest.approx(0.005)
    assert head.render(None, 5.0).crop.pixels.shape == (512, 512, 3)


def test_real_recorded_speech_moves_the_lips(model: AudioMouthModel, prepared: PreparedSource, config: EngineConfig,
                                             measure_face: Callable[[np.ndarray], FaceFeatures | None]) -> None:
    """A real recorded prompt (Asterisk, held out of training), aligned by pocketsphinx."""
    asterisk = pytest.importorskip("livepuppet.export.audio.asterisk")
    if not asterisk.prompts_available():
        pytest.fail("Asterisk prompts are missing: apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en")
    aligner = asterisk.PocketsphinxAligner()
    prompts = [p for p in asterisk.load_prompts() if asterisk.is_held_out(p.name) and len(p.text) > 50
               and sum(c in "pbm" for c in p.text.lower()) >= 3]
    utterance = next(u for p in prompts[:10] if (u := aligner.utterance(p)) is not None)
    rest = FaceFeatures.measure(prepared.neutral).lip_gap
    closed, opened = rendered_lip_gaps(utterance, model, prepared, config, measure_face)
    assert closed and opened
    recall = np.mean([g < 0.5 * rest for g in closed])
    print(f"{utterance.text!r}: bilabial gaps {np.round(closed, 3)}, open-vowel gaps {np.round(opened, 3)}")
    assert recall >= 0.6, f"lips closed on only {recall:.0%} of p/b/m in real speech"
    assert np.median(opened) > np.median(closed) + 0.1
