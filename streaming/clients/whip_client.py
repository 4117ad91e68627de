"""A Python WHIP client: push frames to a livepuppet server and receive the avatar on the same
connection. Used by the tests and the latency harness, and usable to drive a server from a script."""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from livepuppet.engine.clock import Clock, MonotonicClock
from livepuppet.streaming.jitter_recovery import install_jitter_recovery

VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)


class ArrayVideoTrack(MediaStreamTrack):
    """Sends ``frames`` (H, W, 3) u8 RGB at ``fps`` in real time (looping if ``loop``); ``make_frame(i)``
    may generate frames instead. Records when each frame was handed to the encoder."""

    kind = "video"

    def __init__(self, fps: float, frames: Sequence[np.ndarray] = (), count: int | None = None,
                 make_frame: Callable[[int], np.ndarray] | None = None, loop: bool = False,
                 clock: Clock | None = None) -> None:
        super().__init__()
        if not frames and make_frame is None:
            raise ValueError("give frames or make_frame")
        self._frames = frames
        self._make = make_frame
        self._fps = fps
        self._count = count if count is not None else (None if loop or make_frame else len(frames))
        self._clock = clock or MonotonicClock()
        self._index = 0
        self._start: int | None = None
        self.sent_ns: list[int] = []

    async def recv(self) -> av.VideoFrame:
        if self._count is not None and self._index >= self._count:
            self.stop()
            raise MediaStreamError
        now = self._clock.now_ns()
        if self._start is None:
            self._start = now
        due = self._start + int(self._index * 1e9 / self._fps)
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
        i = self._index
        pixels = self._make(i) if self._make is not None else self._frames[i % len(self._frames)]
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = int(i * 90_000 / self._fps)
        frame.time_base = VIDEO_TIME_BASE
        self._index += 1
        self.sent_ns.append(self._clock.now_ns())
        return frame


@dataclass
class ReceivedFrame:
    pixels: np.ndarray
    arrived_ns: int


@dataclass
class ReceivedAudio:
    samples: np.ndarray  # (n,) i16 mono (channels averaged)
    rate: int
    pts: int | None
    arrived_ns: int


@dataclass
class WhipSession:
    """A live WHIP session: the peer connection, the resource URL, and the frames received so far."""

    pc: RTCPeerConnection
    resource: str
    session_id: str
    received: list[ReceivedFrame] = field(default_factory=list)
    audio: list[ReceivedAudio] = field(default_factory=list)
    arrivals: list[int] = field(default_factory=list)  # when each video frame arrived (ns), kept or not
    video_pts: list[int] = field(default_factory=list)  # and its pts (90 kHz), kept or not
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)


async def whip_connect(base_url: str, track: MediaStreamTrack | None, token: str = "",
                       portrait: str | None = None, mode: str = "puppet", keep: Callable[[int], bool] = lambda i: True,
                       clock: Clock | None = None, audio: bool = False) -> WhipSession:
    """Offer ``track`` to ``base_url``/whip (None: receive only, e.g. a talking head) and collect the
    returned video (``keep(i)`` decides which frames are stored as RGB arrays) and, with ``audio``, sound."""
    clock = clock or MonotonicClock()
    install_jitter_recovery()
    pc = RTCPeerConnection()
    if track is not None:
        pc.addTransceiver(track, direction="sendrecv")
    else:
        pc.addTransceiver("video", direction="recvonly")
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    params = {"mode": mode, **({"portrait": portrait} if portrait else {})}
    text, headers = await _offer(pc, f"{base_url.rstrip('/')}/whip", token, params)
    session = WhipSession(pc=pc, resource=headers["Location"], session_id=headers["X-Session-Id"])

    @pc.on("track")
    def on_track(remote: MediaStreamTrack) -> None:
        if remote.kind == "video":
            session.tasks.append(asyncio.ensure_future(_collect(remote, session, keep, clock)))
        elif remote.kind == "audio":
            session.tasks.append(asyncio.ensure_future(_collect_audio(remote, session, clock)))

    await pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))
    return session


async def _offer(pc: RTCPeerConnection, url: str, token: str, params: dict[str, str]) -> tuple[str, dict[str, str]]:
    """POST ``pc``'s offer (WHIP/WHEP); returns the SDP answer and the response headers (201 expected)."""
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", **({"Authorization": f"Bearer {token}"} if token else {})}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=pc.localDescription.sdp, headers=headers, params=params) as response:
            text = await response.text()
            if response.status != 201:
                await pc.close()
                raise RuntimeError(f"offer refused by {url}: {response.status} {text}")
            return text, dict(response.headers)


async def whep_connect(base_url: str, session_id: str, token: str = "", clock: Clock | None = None) -> WhipSession:
    """Watch a session's output over WHEP (receive-only); ``resource`` is the viewer's URL to DELETE."""
    clock = clock or MonotonicClock()
    install_jitter_recovery()
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    text, headers = await _offer(pc, f"{base_url.rstrip('/')}/whep/{session_id}", token, {})
    viewer = WhipSession(pc=pc, resource=headers["Location"], session_id=session_id)

    @pc.on("track")
    def on_track(remote: MediaStreamTrack) -> None:
        viewer.tasks.append(asyncio.ensure_future(_collect(remote, viewer, lambda i: True, clock)))

    await pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))
    return viewer


async def _collect(track: MediaStreamTrack, session: WhipSession, keep: Callable[[int], bool], clock: Clock) -> None:
    i = 0
    while True:
        try:
            frame = cast(av.VideoFrame, await track.recv())
        except MediaStreamError:
            return
        arrived = clock.now_ns()
        session.arrivals.append(arrived)
        session.video_pts.append(int(frame.pts or 0))
        if keep(i):
            session.received.append(ReceivedFrame(frame.to_ndarray(format="rgb24"), arrived))
        session.first_frame.set()
        i += 1


async def _collect_audio(track: MediaStreamTrack, session: WhipSession, clock: Clock) -> None:
    while True:
        try:
            frame = cast(av.AudioFrame, await track.recv())
        except MediaStreamError:
            return
        arrived = clock.now_ns()
        data = frame.to_ndarray()
        channels = len(frame.layout.channels)
        samples = data.reshape(-1, channels).mean(axis=1) if data.shape[0] == 1 else data.mean(axis=0)
        session.audio.append(ReceivedAudio(samples.astype(np.int16), frame.sample_rate, frame.pts, arrived))


async def whip_close(base_url: str, session: WhipSession, token: str = "") -> int:
    """DELETE the session resource and close the peer connection; returns the HTTP status."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{base_url.rstrip('/')}{session.resource}", headers=headers) as response:
            status = response.status
    for task in session.tasks:
        task.cancel()
    await asyncio.gather(*session.tasks, return_exceptions=True)
    await session.pc.close()
    return status
