"""A soak load for a server in its own process: four sessions at once (two webcam puppets over WHIP, one
talking head over WebRTC fed by the audio WebSocket, one frames-mode talking head on the WebSocket), run for
a while and sampled every few seconds: the server's RSS and threads, each client's frames/s, the talking
head's A/V offset at the receiver, and how often the server's event loop stalled.

The A/V offset of a window is median(arrival − media time) of its video frames minus the same for its
audio frames (media time from each stream's RTP timestamps): the constant part is the pipeline's
latency difference, its *drift* over the run is what would make lips and voice part.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from livepuppet.engine.clock import MonotonicClock
from livepuppet.streaming.clients.server_metrics import LOOP_STALL_S, late_since, loop_lag
from livepuppet.streaming.clients.talk_client import TalkClient
from livepuppet.streaming.clients.whip_client import ArrayVideoTrack, WhipSession, whip_close, whip_connect
from livepuppet.streaming.protocol import Ready

SPEECH_RATE = 16000
PAUSE_S = 1.0  # between utterances


@dataclass
class SoakSample:
    t_s: float
    rss_mb: float
    threads: int
    fps: dict[str, float]  # per client, over the last interval
    av_offset_ms: float | None
    healthz_ms: float  # one /healthz round trip at the sample: a stalled server event loop shows here
    loop_late: int  # the server loop's wake-ups over LOOP_STALL_S late in the interval (every session felt them)


@dataclass
class SoakReport:
    samples: list[SoakSample] = field(default_factory=list)
    utterances: int = 0
    errors: list[str] = field(default_factory=list)

    def after(self, warmup_s: float) -> list[SoakSample]:
        return [s for s in self.samples if s.t_s >= warmup_s]

    def summary(self, warmup_s: float) -> dict[str, object]:
        """RSS and thread growth, fps per client (first and last third), A/V offset drift, after warm-up."""
        steady = self.after(warmup_s)
        if len(steady) < 3:
            return {"error": "too few samples after warm-up"}
        third = max(1, len(steady) // 3)
        timed = [(s.t_s, s.av_offset_ms) for s in steady if s.av_offset_ms is not None]
        offsets = [o for _, o in timed]
        # Drift = the trend (least-squares line over the run); the range also holds load-driven latency noise.
        trend = (float(np.polyfit([t for t, _ in timed], offsets, 1)[0]) * (timed[-1][0] - timed[0][0])
                 if len(timed) >= 3 else None)
        fps = {name: (round(statistics.median(s.fps[name] for s in steady[:third]), 1),
                      round(statistics.median(s.fps[name] for s in steady[-third:]), 1))
               for name in steady[0].fps}
        return {"samples": len(steady), "rss_first_mb": round(steady[0].rss_mb, 1),
                "rss_last_mb": round(steady[-1].rss_mb, 1),
                "rss_growth_mb": round(statistics.median(s.rss_mb for s in steady[-third:])
                                       - statistics.median(s.rss_mb for s in steady[:third]), 1),
                "threads_first": steady[0].threads, "threads_last": steady[-1].threads,
                "threads_max_growth": max(s.threads for s in steady) - steady[0].threads,
                "fps_first_last_third": fps,
                "av_offset_ms_median": round(statistics.median(offsets), 1) if offsets else None,
                "av_offset_range_ms": round(max(offsets) - min(offsets), 1) if offsets else None,
                "av_offset_drift_ms": None if trend is None else round(trend, 1),
                "healthz_ms_max": max(s.healthz_ms for s in steady),
                "loop_late_total": sum(s.loop_late for s in steady),
                "utterances": self.utterances, "errors": self.errors[:10]}


def nodding_portrait(frames: int = 30) -> list[np.ndarray]:
    """A camera stand-in: the bundled portrait (scikit-image's astronaut), 480×480, nodding a little so the
    encoder has motion to code."""
    from PIL import Image
    from skimage import data

    face = Image.fromarray(data.astronaut()).resize((520, 520))
    shifts = 10 + np.round(8 * np.sin(np.arange(frames) / frames * 2 * np.pi)).astype(int)
    return [np.asarray(face.crop((20, 20 + int(d), 500, 500 + int(d)))) for d in shifts]


def av_offset_ms(session: WhipSession, since_ns: int) -> float | None:
    """Video minus audio (arrival − media time), medians over what arrived since ``since_ns``."""
    video = [(t - pts * 1e9 / 90_000) for t, pts in zip(session.arrivals, session.video_pts, strict=False)
             if t >= since_ns]
    audio = [(a.arrived_ns - (a.pts or 0) * 1e9 / a.rate) for a in session.audio if a.arrived_ns >= since_ns]
    if len(video) < 10 or len(audio) < 10:
        return None
    return (statistics.median(video) - statistics.median(audio)) / 1e6


async def _speak_forever(client: TalkClient, speech: np.ndarray, report: SoakReport) -> None:
    await client.wait_for(lambda t: t.of_type(Ready), timeout=30)
    await client.start(SPEECH_RATE)
    while True:
        await client.send_audio(speech, SPEECH_RATE, realtime=True)
        await client.end()
        report.utterances += 1
        await asyncio.sleep(PAUSE_S)


async def run_soak(base_url: str, ws_port: int, camera: list[np.ndarray], speech: np.ndarray, duration_s: float,
                   status: Callable[[], tuple[float, int]], sample_s: float = 5.0,
                   on_sample: Callable[[SoakSample], None] | None = None) -> SoakReport:
    """Run the four sessions for ``duration_s``; ``status()`` gives the server's (RSS MB, threads)."""
    report = SoakReport()
    loop = asyncio.get_running_loop()
    puppets = [await whip_connect(base_url, ArrayVideoTrack(30, camera, loop=True), keep=lambda i: False)
               for _ in range(2)]
    talk = await whip_connect(base_url, None, mode="talk", audio=True, keep=lambda i: False)
    for session in (*puppets, talk):
        await asyncio.wait_for(session.first_frame.wait(), 60)
    # The clients share this process's cores with three video decoders: their own keepalive is lenient (the
    # server's stays as configured), so a client starved by other load is not taken for a dead server.
    attached = TalkClient(f"ws://127.0.0.1:{ws_port}/talk?session={talk.session_id}", ping_timeout=120.0)
    frames = TalkClient(f"ws://127.0.0.1:{ws_port}/talk", ping_timeout=120.0)
    async with attached, frames:
        tasks = [asyncio.ensure_future(_speak_forever(c, speech, report)) for c in (attached, frames)]
        start = loop.time()
        clock = MonotonicClock()  # the clients stamp arrivals with the same monotonic clock
        window_ns = clock.now_ns()
        lag = await asyncio.to_thread(loop_lag, base_url)
        try:
            while loop.time() - start < duration_s:
                await asyncio.sleep(sample_s)
                for task in tasks:
                    if task.done() and task.exception() is not None:
                        report.errors.append(repr(task.exception()))
                        raise RuntimeError(f"a talking head client failed: {task.exception()!r}")
                now_ns = clock.now_ns()
                seconds = (now_ns - window_ns) / 1e9
                fps = {"puppet-1": _rate(puppets[0], window_ns, seconds),
                       "puppet-2": _rate(puppets[1], window_ns, seconds), "talk": _rate(talk, window_ns, seconds),
                       "frames": round(len(frames.transcript.frames) / seconds, 1)}
                frames.transcript.frames.clear()  # the JPEGs are not needed, only how many came
                for client in (attached, frames):
                    del client.transcript.events[:-50]  # keep the recent events (Ready, errors) only
                rss, threads = await asyncio.to_thread(status)
                healthz_ms = await asyncio.to_thread(_healthz_ms, base_url)
                lag_before, lag = lag, await asyncio.to_thread(loop_lag, base_url)
                offset = av_offset_ms(talk, window_ns)
                window_ns = now_ns
                for session in (*puppets, talk):
                    _trim(session)
                sample = SoakSample(round(loop.time() - start, 1), rss, threads, fps,
                                    None if offset is None else round(offset, 1), healthz_ms,
                                    late_since(lag_before, lag, LOOP_STALL_S)[0])
                report.samples.append(sample)
                if on_sample is not None:
                    on_sample(sample)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    for session in (*puppets, talk):
        await whip_close(base_url, session)
    return report


def _healthz_ms(base_url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(base_url + "/healthz", timeout=60) as r:
        r.read()
    return round((time.perf_counter() - start) * 1000, 1)


def _rate(session: WhipSession, since_ns: int, seconds: float) -> float:
    return round(sum(t >= since_ns for t in session.arrivals) / seconds, 1)


def _trim(session: WhipSession, keep: int = 400) -> None:
    """Keep the clients' bookkeeping bounded over a long run (the last ``keep`` entries suffice)."""
    del session.arrivals[:-keep]
    del session.video_pts[:-keep]
    del session.audio[:-keep]
