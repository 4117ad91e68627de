"""Training recipe pieces: aligners' labels, targets, a tiny training run, ONNX export parity, runtime loading."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from livepuppet.engine.speech.features import HOP, SAMPLE_RATE
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.engine.speech.visemes import PP, VISEME_INDEX
from livepuppet.export.audio.asterisk import PocketsphinxAligner, load_prompts, normalize_text, prompts_available
from livepuppet.export.audio.corpus import espeak_train
from livepuppet.export.audio.dataset import frame_visemes, make_example, mouth_targets, sample_batch, to_16k
from livepuppet.export.audio.espeak import EspeakSynth, VoiceSettings, espeak_available
from livepuppet.export.audio.model import NetConfig
from livepuppet.export.audio.speech_data import Segment

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
