"""The web page in real headless Chromium (Debian's), its fake camera playing a face video from a file:
press Start, and avatar frames must arrive over WebRTC and move."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.realtime]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def write_y4m(path: Path, frames: list[np.ndarray], fps: int, side: int = 320) -> None:
    """A YUV4MPEG2 file (what Chromium's fake camera plays), converted with PyAV."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{side} H{side} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for pixels in frames:
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(side, side, format="yuv420p")
            out.write(b"FRAME\n")
            sizes = ((side, side), (side // 2, side // 2), (side // 2, side // 2))
            for plane, (w, h) in zip(frame.planes, sizes, strict=True):
                rows = np.frombuffer(bytes(plane), np.uint8).reshape(-1, plane.line_size)[:h, :w]
                out.write(rows.tobytes())


@pytest.fixture()
def browser(tmp_path: Path, face_frames: list[np.ndarray], speech_wav: Path):  # noqa: ANN201
    """Headless Chromium whose fake camera plays a face video and whose fake microphone plays speech."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (CI installs it)")
    camera = tmp_path / "camera.y4m"
    write_y4m(camera, face_frames, fps=30)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}",
            f"--use-file-for-fake-audio-capture={speech_wav}", "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection"])
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, server):  # noqa: ANN001, ANN201
    """The page, loaded with its portraits; the list collects uncaught page errors."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.base_url + "/")
    page.wait_for_selector("#portraits img")
    return page, errors


def test_page_shows_a_moving_avatar(server_factory, config, browser, portrait, tmp_path: Path) -> None:
    page, errors = open_page(browser, server_factory(config))
    photo = tmp_path / "me.png"
    Image.fromarray(portrait[:, ::-1].copy()).save(photo)  # a second portrait: the bundled one mirrored
    page.set_input_files("#upload", str(photo))
    page.wait_for_function("document.querySelector('#upload-msg').textContent.startsWith('ready')", timeout=30_000)
    assert page.locator("#portraits img").count() == 2 and page.locator("#portraits img.selected").count() == 1
    page.click("#start")
    page.wait_for_function("window.livepuppet.framesDecoded > 45", timeout=30_000)
    time.sleep(3.0)  # sample the avatar's motion for a few seconds
    state = page.evaluate("window.livepuppet")
    assert not errors and not state["errors"], (errors, state["errors"])
    samples = state["motionSamples"][-12:]
    assert state["fps"] > 10, state["fps"]
    assert max(samples) > 1.0, f"the avatar does not move: {samples}"
    page.wait_for_function("document.querySelector('#stat-face').textContent === 'found'", timeout=5_000)
    session = state["session"]
    info = page.evaluate(f"fetch('/api/sessions/{session}').then(r => r.json())")
    assert info["frames_out"] > 45 and info["errors"] == 0, info
    page.click("#stop")
    page.wait_for_function("document.querySelector('#status').textContent === 'idle'")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and page.evaluate("fetch('/healthz').then(r => r.json())")["sessions"]:
        time.sleep(0.2)
    assert page.evaluate("fetch('/healthz').then(r => r.json())")["sessions"] == 0, "Stop did not end the session"


def test_page_talks_from_the_microphone(server_factory, config, browser) -> None:
    page, errors = open_page(browser, server_factory(config))
    page.click("#tab-talk")
    page.click("#talk-mic")
    page.wait_for_function("document.querySelector('#status').textContent === 'speaking'", timeout=30_000)
    page.wait_for_function("window.livepuppet.framesDecoded > 45", timeout=30_000)
    state = page.evaluate("window.livepuppet")
    assert not errors and not state["errors"], (errors, state["errors"])
    info = page.evaluate(f"fetch('/api/sessions/{state['session']}').then(r => r.json())")
    assert info["kind"] == "talk" and info["frames_out"] > 45 and info["errors"] == 0, info
    audio = page.evaluate("""() => new Promise(resolve => window.livepuppet.pc.getStats().then(r => {
        let bytes = 0; r.forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'audio') bytes = s.bytesReceived; });
        resolve(bytes); }))""")
    assert audio > 2000, "no audio came back"
    page.click("#talk-stop")
    page.wait_for_function("document.querySelector('#status').textContent === 'idle'")
