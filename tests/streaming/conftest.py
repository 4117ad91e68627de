"""Fixtures for the server tests: an in-process server on its own thread and event loop, real face video
frames with known motion, and loopback-only ICE (aioice leaves 127.0.0.1 out of its host candidates)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import aioice.ice
import numpy as np
import pytest
from aiohttp import web
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.pipeline import Animator
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import Expression, HeadMotion, Motion
from livepuppet.streaming.server.app import create_app, make_runner

DRIVER_FPS = 30
DRIVER_FRAMES = 60  # a 2 s loop


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"])


def driver_motion(i: int) -> Motion:
    """The driver's known performance: mouth opens once a second (open near t = 0.25 s, closed near
    0.75 s), eyes closed for frames 40–47 of every 2 s loop, a small nod."""
    t = (i % DRIVER_FRAMES) / DRIVER_FPS
    mouth = 0.3 * max(0.0, np.sin(2 * np.pi * t))
    eyes = 0.0 if 40 <= i % DRIVER_FRAMES < 48 else 1.0
    return Motion(pts=int(t * 1e9), seq=i, head=HeadMotion(pitch=3.0 * np.sin(np.pi * t)),
                  expression=Expression(mouth_open=mouth, jaw=0.7 * mouth, eye_open_l=eyes, eye_open_r=eyes))


@pytest.fixture(name="driver_motion", scope="session")
def driver_motion_fixture() -> Callable[[int], Motion]:
    return driver_motion


@pytest.fixture(scope="session")
def face_frames(prepared: PreparedSource, config: EngineConfig) -> list[np.ndarray]:
    """DRIVER_FRAMES real-looking 480×480 face frames (the portrait animated by :func:`driver_motion`)."""
    raw = replace(config, retarget=replace(config.retarget, filter_min_cutoff=100.0, filter_beta=0.0))
    animator = Animator(prepared, raw)
    import cv2

    frames = []
    for i in range(DRIVER_FRAMES):
        crop = animator.animate(driver_motion(i), full=False).crop.pixels
        frames.append(np.ascontiguousarray(cv2.resize(crop, (480, 480), interpolation=cv2.INTER_AREA)))
    return frames


@dataclass
class RunningServer:
    base_url: str
    app: web.Application
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the server's loop and wait for it (for inspecting server state)."""
        async def run() -> object:
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


@pytest.fixture()
def server_factory(portrait: np.ndarray, request: pytest.FixtureRequest
                   ) -> Iterator[Callable[[EngineConfig], RunningServer]]:
    """Start servers with a given config on free ports, each on its own thread; all stopped at teardown.
    ``--server-workers N`` gives servers left at the single-process default N engine worker processes."""
    started: list[tuple[asyncio.AbstractEventLoop, web.AppRunner, threading.Thread]] = []
    workers = int(request.config.getoption("--server-workers"))

    def start(cfg: EngineConfig) -> RunningServer:
        cfg = replace(cfg, server=replace(cfg.server, port=0, ws_port=0,  # free ports: tests run in parallel
                                          workers=cfg.server.workers or workers))
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        box: dict[str, object] = {}

        def run() -> None:
            asyncio.set_event_loop(loop)
            app = create_app(cfg, portrait, "astronaut")
            runner = make_runner(app)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            box.update(app=app, runner=runner, port=site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert ready.wait(60), "server did not start"
        started.append((loop, box["runner"], thread))  # type: ignore[arg-type]
        return RunningServer(f"http://127.0.0.1:{box['port']}", box["app"], loop)  # type: ignore[arg-type]

    yield start
    for loop, runner, thread in started:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
