"""Fixtures of the framework adapters' tests: one loaded avatar (the bundled portrait) and real speech with
phone timings (espeak-ng, a voice the audio model never trained on)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from livepuppet.engine.heap import freeze_startup_heap
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


@pytest.fixture(autouse=True)
def gc_pauses() -> Iterator[list[tuple[float, float]]]:
    """The heap as a deployed bot has it (docs/integrations.md: frozen once everything is loaded), so a cycle
    collection scans what the test allocates, not the whole test session's modules; yields the collector's
    pauses during the test, (monotonic s, ms), for a timing assertion to report."""
    pauses: list[tuple[float, float]] = []
    started: list[float] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            pauses.append((time.monotonic(), (time.perf_counter() - started[0]) * 1e3))

    freeze_startup_heap()
    gc.callbacks.append(record)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(record)
        gc.unfreeze()
