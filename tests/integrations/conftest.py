"""Fixtures of the framework adapters' tests: one loaded avatar (the bundled portrait) and real speech with
phone timings (espeak-ng, a voice the audio model never trained on)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from livepuppet.integrations.avatar import AvatarAssets, load_avatar

from tests.integrations.speech_checks import TEXT, VOICE


@pytest.fixture(scope="session")
def assets(portrait, config) -> AvatarAssets:  # noqa: ANN001
    """The avatar at a 256² crop: these tests run in real time, and a quarter of the pixels keeps them on
    time on a busy 2-core machine (the benchmark measures the default 512²)."""
    small = replace(config, render=replace(config.render, crop_size=256))
    return load_avatar(portrait, small)


@pytest.fixture(scope="session")
def utterance():  # noqa: ANN201
    from livepuppet.export.audio.espeak import EspeakSynth, VoiceSettings, espeak_available

    if not espeak_available():
        pytest.fail("libespeak-ng is missing: apt-get install espeak-ng libespeak-ng1 (CI installs it)")
    return EspeakSynth().synthesize(TEXT, VoiceSettings(VOICE, rate=150))

