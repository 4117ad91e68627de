"""Training recipe pieces: aligners' labels, targets, a tiny training run, ONNX export parity, runtime loading."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.speech.features import HOP, SAMPLE_RATE
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.engine.speech.visemes import PP, VISEME_INDEX
from livepuppet.export.audio.asterisk import (
    PocketsphinxAligner,
    load_prompts,
    normalize_text,
    prompts_available,
    read_wav,
)
from livepuppet.export.audio.corpus import espeak_train
from livepuppet.export.audio.cross_align import CrossLingualAligner
from livepuppet.export.audio.dataset import frame_visemes, make_example, mouth_targets, sample_batch, to_16k
from livepuppet.export.audio.espeak import EspeakSynth, VoiceSettings, espeak_available
from livepuppet.export.audio.model import NetConfig
from livepuppet.export.audio.phonemize import Phonemizer, ipa_to_cmu, to_phone
from livepuppet.export.audio.speech_data import Segment
from livepuppet.export.audio.voice_prompts import PROMPT_SETS, align_prompt

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from livepuppet.export.audio.to_onnx import export_onnx, torch_reference  # noqa: E402
from livepuppet.export.audio.train import TrainConfig, train  # noqa: E402

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="libespeak-ng not installed")
needs_prompts = pytest.mark.skipif(not prompts_available(), reason="asterisk-core-sounds-en(-wav) not installed")


@needs_espeak
def test_espeak_phoneme_events_give_viseme_segments() -> None:
    utt = EspeakSynth().synthesize("Bob saw a map.", VoiceSettings("en-us", rate=160))
    assert utt.rate > 0 and len(utt.audio) / utt.rate > 0.5
    names = [s.viseme for s in utt.segments]
    assert names.count(PP) >= 3 and VISEME_INDEX["aa"] in names  # b, b, m, p; 'a' of map
    starts = [s.start for s in utt.segments]
    assert starts == sorted(starts) and all(s.end > s.start for s in utt.segments)
    assert utt.segments[-1].end <= len(utt.audio) / utt.rate + 1e-6
    # speech energy sits inside the segments, the lead-in before the first one is quiet
    lead = utt.audio[: int(utt.segments[0].start * utt.rate)]
    assert lead.size == 0 or np.abs(lead).max() < 0.3 * np.abs(utt.audio).max()


@needs_prompts
def test_pocketsphinx_aligns_a_real_prompt() -> None:
    prompt = next(p for p in load_prompts() if p.name == "agent-alreadyon")
    assert normalize_text("Press 1 or #, then *.") == ["press", "one", "or", "pound", "then", "star"]
    utt = PocketsphinxAligner().utterance(prompt)
    assert utt is not None and utt.rate == 8_000
    duration = len(utt.audio) / utt.rate
    assert 0 <= utt.segments[0].start < utt.segments[-1].end <= duration + 0.02
    # "please" starts with p: its closure must be labelled PP somewhere after the first word
    assert any(s.viseme == PP for s in utt.segments)


def test_labels_and_targets() -> None:
    segments = (Segment(0.10, 0.20, PP), Segment(0.20, 0.40, VISEME_INDEX["aa"]))
    labels = frame_visemes(segments, 50)
    assert labels[5] == 0 and labels[10] == PP and labels[19] == PP and labels[20] == VISEME_INDEX["aa"]
    shifted = frame_visemes(segments, 50, shift_s=0.05)
    assert shifted[15] == PP and shifted[24] == PP and shifted[25] == VISEME_INDEX["aa"] and shifted[14] == 0
    slower = frame_visemes(segments, 100, stretch=1.5)  # speed perturbation: labels stretch with the audio
    assert slower[14] == 0 and slower[15] == PP and slower[29] == PP and slower[30] == VISEME_INDEX["aa"]
    targets = mouth_targets(labels)
    assert targets.shape == (50, 5)
    assert (targets[labels == PP, 3] >= 0.9).all()  # lips closed through the bilabial
    assert targets[30, 0] > 0.9 and targets[10, 0] < 0.2  # jaw open on 'a', closed on p
    assert targets[0, 4] == 0.0 and targets[30, 4] == 1.0  # voiced only in speech


@pytest.mark.slow
@needs_espeak
def test_tiny_training_run_exports_and_loads(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    net_config = NetConfig(conv_channels=16, hidden=24, context=4, lookahead=3)
    utts = espeak_train(EspeakSynth(), 10, seed=3, quiet=True)
    rng = np.random.default_rng(0)
    examples = [make_example(u, 4, 3) for u in utts] + [make_example(u, 4, 3, rng) for u in utts]
    batch = sample_batch(examples, 4, 50, 4, 3, rng)
    assert batch.mel.shape == (4, 54, 40) and batch.mask.any()
    config = TrainConfig(minutes=2.0, max_steps=60, batch=8, crop_steps=100, lr=1e-2, net=net_config)
    result = train(examples, config, time.monotonic, quiet=True)
    assert result.steps == 60
    assert np.mean(result.losses[-10:]) < 0.8 * np.mean(result.losses[:10])

    path = export_onnx(result.net, tmp_path / "tiny.onnx")
    assert path.stat().st_size < 200_000
    model = AudioMouthModel.load(path)
    assert model.lookahead_frames == 3 and model.context_frames == 4 and model.hidden == 24

    # the runtime (NumPy features + onnxruntime + streaming bookkeeping) reproduces torch on the same utterance
    pcm = to_16k(utts[0])
    frames = model.infer(pcm)
    hops = -(-len(pcm) // HOP)
    assert len(frames) == hops and frames[-1].t < len(pcm) / SAMPLE_RATE + 0.01
    ref_probs, ref_mouth = torch_reference(result.net, examples[0].mel)
    np.testing.assert_allclose(np.array([f.probs for f in frames]), ref_probs[3 : 3 + hops], atol=1e-4)
    np.testing.assert_allclose([f.jaw_open for f in frames], ref_mouth[3 : 3 + hops, 0], atol=1e-4)
    np.testing.assert_allclose([f.lip_width for f in frames], ref_mouth[3 : 3 + hops, 1], atol=1e-4)


def test_ipa_phones_get_their_nearest_cmu_phones() -> None:
    assert ipa_to_cmu("tʃ") == ("CH",) and ipa_to_cmu("ts") == ("T", "S")  # affricates
    assert ipa_to_cmu("ˈɛ̃ː") == ("EH",)  # stress, nasalisation and length do not change the stand-in
    assert ipa_to_cmu("ʊɹ") == ("UH", "R") and ipa_to_cmu("aɪ") == ("AY",)
    assert ipa_to_cmu("mʲ") == ("M",) and ipa_to_cmu("ˈ") == ()
    beta = to_phone("β")  # Spanish b between vowels: aligned as B, but labelled with its own viseme
    assert beta is not None and beta.cmu == ("B",) and beta.viseme == VISEME_INDEX["FF"]
    assert to_phone("_") is None


@needs_espeak
def test_phonemizer_gives_bilabials_per_word() -> None:
    words = Phonemizer(EspeakSynth()).words("Prego inserire il numero pin.", "it")
    assert len(words) == 5
    bilabials = [[p.ipa for p in w if p.viseme == PP] for w in words]
    assert bilabials == [["p"], [], [], ["m"], ["p"]]


def _level_db(audio: np.ndarray, rate: int, start: float, end: float) -> float:
    part = audio[int(start * rate) : max(int(end * rate), int(start * rate) + 1)]
    return float(10.0 * np.log10(np.mean(part.astype(np.float64) ** 2) + 1e-12))


@needs_espeak
@needs_prompts
def test_cross_lingual_alignment_matches_the_english_dictionary_alignment() -> None:
    """espeak's phones through pocketsphinx put the bilabials where the CMU dictionary's alignment does."""
    prompt = next(p for p in load_prompts() if p.name == "agent-pass")  # "Please enter your password, ..."
    audio, rate = read_wav(prompt.path)
    pocketsphinx = PocketsphinxAligner()
    reference = pocketsphinx.align(audio, rate, normalize_text(prompt.text))
    segments = CrossLingualAligner(Phonemizer(EspeakSynth()), pocketsphinx).align(audio, rate, prompt.text, "en-us")
    assert reference is not None and segments is not None
    ours = [s for s in segments if s.viseme == PP]
    theirs = [s for s in reference if s.viseme == PP]
    assert len(ours) == len(theirs) == 4  # please, password, by, pound
    for a, b in zip(ours, theirs, strict=True):
        assert abs(a.start - b.start) <= 0.03 and abs(a.end - b.end) <= 0.03


@needs_espeak
@pytest.mark.skipif(not PROMPT_SETS[3].available(), reason="asterisk-core-sounds-it(-wav) not installed")
def test_cross_lingual_alignment_of_a_real_italian_prompt() -> None:
    """A real Italian prompt: the bilabials espeak's transcript predicts are found, in order, at closures."""
    carlo = PROMPT_SETS[3]
    assert carlo.speaker == "carlo-it" and carlo.held_out
    prompt = next(p for p in load_prompts(carlo.sounds, carlo.transcripts) if p.name == "conf-getpin")
    assert prompt.text.startswith("Prego inserire il numero pin")
    synth = EspeakSynth()
    utt = align_prompt(prompt, carlo, CrossLingualAligner(Phonemizer(synth), PocketsphinxAligner()))
    assert utt is not None and utt.speaker == "carlo-it"
    duration = len(utt.audio) / utt.rate
    assert 0.0 <= utt.segments[0].start and utt.segments[-1].end <= duration + 0.02
    starts = [s.start for s in utt.segments]
    assert starts == sorted(starts)
    expected = sum(p.viseme == PP for w in Phonemizer(synth).words(prompt.text, carlo.voice) for p in w)
    bilabials = [s for s in utt.segments if s.viseme == PP]
    assert len(bilabials) == expected == 3  # Prego, numero, pin
    assert all(0.02 <= s.end - s.start <= 0.25 for s in utt.segments)  # phone-length segments
    # lips closed: each bilabial sits at a dip in level (closure silence or nasal murmur; ±40 ms for the
    # aligner's boundary error), and the stop of "pin" is near-silent
    vowels = [s for s in utt.segments if s.viseme in (VISEME_INDEX["aa"], VISEME_INDEX["E"], VISEME_INDEX["O"])]
    vowel_db = float(np.median([_level_db(utt.audio, utt.rate, s.start, s.end) for s in vowels]))
    hop = utt.rate // 100
    frames_db = 10.0 * np.log10(np.mean(utt.audio[: len(utt.audio) // hop * hop].reshape(-1, hop) ** 2, axis=1) + 1e-12)
    for s in bilabials:
        lo, hi = max(0, round((s.start - 0.04) * 100)), round((s.end + 0.04) * 100)
        assert frames_db[lo:hi].min() < vowel_db - 3.0
    assert _level_db(utt.audio, utt.rate, bilabials[2].start, bilabials[2].end) < vowel_db - 10.0
