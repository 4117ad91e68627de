"""Shared fixtures: real imagery (the portrait bundled with scikit-image) and media made on the fly."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe's C++ logging before it is imported

import av
import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig, TrackerConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.face.tracker import FaceTracker
from livepuppet.engine.heap import freeze_startup_heap
from livepuppet.engine.pipeline import Animator, open_portrait
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.mouth_model import AudioMouthModel
from livepuppet.engine.types import Expression, HeadMotion, Motion, VideoFrame
from skimage import data


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--server-workers", type=int, default=0,
                     help="run the in-process servers of the tests with this many engine worker processes "
                          "(tests that set their own number keep it)")


@pytest.fixture(autouse=True)
def gc_pauses(request: pytest.FixtureRequest) -> Iterator[list[tuple[float, float]]]:
    """Real-time tests run on a heap frozen as a deployed process has it (``livepuppet serve`` and the
    workers freeze theirs once loaded; docs/integrations.md tells bots to), so a cycle collection walks what
    the test allocated, not the whole test session's modules (0.3 s with the lock held: a stall no deployed
    server has). Yields the collector's pauses during the test, (monotonic s, ms), for timing assertions to
    report; other tests get an empty list and the collector as it is (leak checks count its objects)."""
    pauses: list[tuple[float, float]] = []
    if request.node.get_closest_marker("realtime") is None:
        yield pauses
        return
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


@pytest.fixture(scope="session")
def portrait() -> np.ndarray:
    """A real 512×512 portrait photo (NASA, public domain) shipped inside scikit-image."""
    return data.astronaut()


@pytest.fixture(scope="session")
def config() -> EngineConfig:
    return EngineConfig()


@pytest.fixture(scope="session")
def prepared(portrait: np.ndarray, config: EngineConfig) -> PreparedSource:
    return open_portrait(portrait, config)


@pytest.fixture(scope="session")
def model() -> AudioMouthModel:
    """The shipped audio→mouth model (assets/audio_mouth.onnx), loaded once."""
    return AudioMouthModel.load()


def grace_hopper() -> np.ndarray:
    """A real 512×600 head-and-shoulders portrait (Grace Hopper, US Navy photo, public domain) shipped in
    matplotlib's sample data (matplotlib is a dependency of livepuppet)."""
    try:
        from matplotlib import cbook
    except ImportError:
        pytest.fail("matplotlib is missing: pip install matplotlib (its sample data holds a test portrait)")
    try:
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except (OSError, ValueError) as exc:
        pytest.fail(f"matplotlib's sample data lacks grace_hopper.jpg ({exc}): reinstall matplotlib from PyPI")
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        pytest.fail(f"cannot read {path}: reinstall matplotlib from PyPI")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _close_up(image: np.ndarray, center: tuple[int, int], side: int, size: int = 512) -> np.ndarray:
    import cv2

    x, y = center
    region = image[max(0, y - side // 2): y + side // 2, max(0, x - side // 2): x + side // 2]
    return np.ascontiguousarray(cv2.resize(region, (size, size), interpolation=cv2.INTER_CUBIC))


def _small(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))


# Real portraits from registry packages, by framing and face size (inter-ocular distance in the image):
# waist-up astronaut (≈42 px), head-and-shoulders Hopper (≈84 px), a close-up cut from the Hopper photo
# (≈150 px, a webcam selfie's framing: the crop runs past the image edges) and the astronaut at half
# size (≈21 px, a small face).
PORTRAIT_CASES = ("astronaut-waist-up", "hopper-head-and-shoulders", "hopper-close-up", "astronaut-small-face")


def real_portrait(name: str) -> np.ndarray:
    """One of :data:`PORTRAIT_CASES` as an ``(H, W, 3) u8`` RGB image."""
    if name == "astronaut-waist-up":
        return data.astronaut()
    if name == "hopper-head-and-shoulders":
        return grace_hopper()
    if name == "hopper-close-up":
        return _close_up(grace_hopper(), (265, 215), 290)
    if name == "astronaut-small-face":
        return _small(data.astronaut(), 256)
    raise ValueError(f"unknown portrait case {name!r}")


@pytest.fixture(scope="session", params=PORTRAIT_CASES)
def portrait_case(request: pytest.FixtureRequest) -> str:
    """Each real test portrait in turn (see :data:`PORTRAIT_CASES`)."""
    return str(request.param)


@pytest.fixture(scope="session")
def case_prepared(portrait_case: str, config: EngineConfig) -> PreparedSource:
    return open_portrait(real_portrait(portrait_case), config)


@pytest.fixture()
def static_tracker() -> Iterator[FaceTracker]:
    with FaceTracker(TrackerConfig(), static=True) as tracker:
        yield tracker


def talking_motion(i: int, fps: float) -> Motion:
    """A known driver performance: the mouth opens for half of every second (open around t = 0.25 s,
    1.25 s, …; closed around 0.75 s, 1.75 s, …), a blink at frames 10-11, a small nod."""
    t = i / fps
    mouth = 0.25 * max(0.0, np.sin(2 * np.pi * t))
    blink = 0.0 if i in (10, 11) else 1.0
    return Motion(pts=int(t * 1e9), seq=i, head=HeadMotion(pitch=4.0 * np.sin(2 * np.pi * t)),
                  expression=Expression(mouth_open=mouth, jaw=0.7 * mouth, eye_open_l=blink, eye_open_r=blink))


def write_driver_video(path: Path, prepared: PreparedSource, config: EngineConfig, frames: int = 24,
                       fps: int = 12, audio: bool = True) -> list[Motion]:
    """A real-looking face video (the portrait animated with :func:`talking_motion`) with a tone track.
    Rendered without temporal smoothing, so the video shows exactly the scripted motion."""
    unfiltered = replace(config, retarget=replace(config.retarget, filter_min_cutoff=100.0, filter_beta=0.0))
    animator = Animator(prepared, unfiltered)
    motions = [talking_motion(i, fps) for i in range(frames)]
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = video.height = 320
        video.pix_fmt = "yuv420p"
        audio_stream = container.add_stream("aac", rate=16000) if audio else None
        for m in motions:
            crop = animator.animate(m, full=False).crop.pixels
            frame = av.VideoFrame.from_ndarray(crop, format="rgb24").reformat(width=320, height=320)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio_stream is not None:
            n = int(16000 * frames / fps)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.float32)[None, :]
            samples = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            samples.sample_rate = 16000
            for packet in audio_stream.encode(samples):
                container.mux(packet)
            for packet in audio_stream.encode(None):
                container.mux(packet)
    return motions


@pytest.fixture(scope="session")
def driver_video(tmp_path_factory: pytest.TempPathFactory, prepared: PreparedSource, config: EngineConfig) -> Path:
    path = tmp_path_factory.mktemp("media") / "driver.mp4"
    write_driver_video(path, prepared, config)
    return path


@pytest.fixture()
def measure_face(static_tracker: FaceTracker) -> Callable[[np.ndarray], FaceFeatures | None]:
    """Re-track an image → its face's shape features (lip gap, eye gaps, … in inter-ocular units), or None
    when no face is found. How the tests check what a rendered avatar does."""

    def measure(pixels: np.ndarray) -> FaceFeatures | None:
        return FaceFeatures.of_track(static_tracker.track(VideoFrame(np.ascontiguousarray(pixels), 0, 0)))

    return measure


ESPEAK = "espeak-ng"
SPEECH_TEXT = "Papa bought a map. Bob may pop by. Mama, a bad apple!"


def synthesize(path: Path, text: str = SPEECH_TEXT, voice: str = "en-us", rate: int = 150) -> Path:
    """Real synthetic speech from espeak-ng (CI installs it)."""
    import shutil
    import subprocess

    if shutil.which(ESPEAK) is None:
        pytest.fail("espeak-ng is missing: apt-get install espeak-ng (CI installs it)")
    subprocess.run([ESPEAK, "-v", voice, "-s", str(rate), "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spoken sentence full of bilabials (p, b, m) and open vowels, as a 22.05 kHz WAV."""
    return synthesize(tmp_path_factory.mktemp("speech") / "speech.wav")
