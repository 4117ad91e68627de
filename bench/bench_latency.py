"""Capture-to-avatar latency through real WebRTC on loopback, next to a plain echo in the same run.

What: ``livepuppet serve`` runs in its own process with ``server.latency_probe = true``. This process is
an aiortc WHIP client that sends 512×512 face frames (the bundled portrait animated by the scripted
performance) at ``--fps``, each stamped with its frame id in a strip of black/white cells (see
``streaming/latency_probe.py``); the server copies the strip from each input frame onto the avatar frame
made from it. Latency of frame *i* = the time its first avatar frame arrives here (decoded) minus the
time frame *i* was handed to this side's encoder. It includes encode, RTP, decode, the input ring,
tracking, rendering, the output ring, the output track, encode, RTP and decode again.

Modes, one after the other against the same server: ``echo`` (the same frames returned untouched through
the same rings, tracks and encoders: the cost of the WebRTC stack alone), ``avatar`` (the mesh renderer),
and ``overload`` (avatar with frames sent at ``--overload-fps``, faster than the engine can render:
latest-wins rings must drop frames, not queue them, so latency stays bounded).

Motion-to-photon: a frame id arriving says nothing about when the *motion* shows (smoothing delays it). So
the sent frames and the frames received are re-tracked (MediaPipe, each image on its own), giving the
driver's and the avatar's mouth opening (inner-lip gap) and eye opening over time; the lag that best
aligns them (normalized cross-correlation of the sample-and-hold signals on a 1 ms grid) is the motion lag.
The echo's lag is the WebRTC stack's; the avatar's lag minus the echo's is what the engine adds, smoothing
included. The driver performs the scripted talking segment (syllables at ~4 Hz, two blinks, head turns).

Run: ``python bench/bench_latency.py [--seconds 10] [--fps 30] [--overload-fps 90] [--json PATH]
[--set retarget.KEY=VALUE ...] [--compare-before] [--compare-workers N]`` (``--set`` goes to the server, e.g.
to measure other filter settings; ``--compare-workers N`` adds the avatar with N engine worker processes: the
preset runs one per core, so ``--compare-workers 0`` measures the engine in the server process beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
import aioice.ice
import numpy as np
from livepuppet.engine.config import EngineConfig, TrackerConfig
from livepuppet.engine.face.expression import FaceFeatures
from livepuppet.engine.face.tracker import FaceTracker
from livepuppet.engine.motion.motion_filter import unfiltered
from livepuppet.engine.motion.scripted_motion import scripted_motion
from livepuppet.engine.pipeline import Animator, open_portrait
from livepuppet.engine.types import VideoFrame
from livepuppet.streaming.clients.server_process import ServerProcess
from livepuppet.streaming.clients.whip_client import ArrayVideoTrack, whip_close, whip_connect
from livepuppet.streaming.latency_probe import read_id, stamp_id
from livepuppet.streaming.server.ice import restrict_host_addresses
from machine import cpu_model  # bench/machine.py (the script's folder is on sys.path)
from skimage import data

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latency.json"
WARMUP_S = 2.0  # frames sent in the first seconds are not counted (ICE, codec start, bitrate ramp)
TALK_S = (1.6, 5.4)  # the scripted performance's talking segment (mouth, blinks, head turns), looped
MAX_LAG_MS = 400
MIN_LAG_MS = -100  # a predictive filter may lead
MIN_R = 0.6  # below this correlation a lag figure means little
MAX_LAG_FRAMES = 12
# The single One Euro filter used before per-channel smoothing (1.5 Hz, β 0.3 per degree/s on the head).
BEFORE = ["retarget.filter_min_cutoff=1.5", "retarget.filter_beta=0.3", "retarget.filter_d_cutoff=1.0",
          "retarget.filter_lead=0.0", "retarget.head_filter_ratio=1.0", "retarget.slow_filter_ratio=1.0",
          "retarget.head_filter_beta=17.2"]


@dataclass
class MotionLag:
    """Lag (ms) that best aligns the avatar's re-tracked signal with the driver's, and the correlation there.

    ``*_ms``: in time (send time vs arrival time): what a viewer sees, transport included. ``*_id_ms``: by
    frame id (the driver frame each avatar frame was made from, read from its probe strip): the motion's delay
    inside the engine (smoothing, rig), free of transport jitter; frame-id latency + this ≈ motion-to-photon.
    """

    mouth_ms: float
    mouth_r: float
    eyes_ms: float
    eyes_r: float
    mouth_id_ms: float
    mouth_id_r: float
    eyes_id_ms: float
    eyes_id_r: float


@dataclass
class Result:
    mode: str
    fps_in: float
    sent: int
    returned: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    server_dropped: int
    server_repeated: int
    motion: MotionLag | None = None


def face_frames(fps: float) -> list[np.ndarray]:
    """The talking segment rendered without smoothing, so the driver shows exactly the script."""
    config = EngineConfig()
    raw = replace(config, retarget=unfiltered(config.retarget))
    animator = Animator(open_portrait(data.astronaut(), config), raw)
    count = int((TALK_S[1] - TALK_S[0]) * fps)
    return [animator.animate(scripted_motion(TALK_S[0] + i / fps), full=False).crop.pixels.copy()
            for i in range(count)]


def face_signals(tracker: FaceTracker, pixels: np.ndarray) -> tuple[float, float]:
    """(inner-lip gap, mean eye gap) of the face in ``pixels``, NaN when none is found."""
    features = FaceFeatures.of_track(tracker.track(VideoFrame(np.ascontiguousarray(pixels), 0, 0)))
    if features is None:
        return float("nan"), float("nan")
    return features.lip_gap, 0.5 * (features.eye_gap_l + features.eye_gap_r)


def best_lag(t_ref: np.ndarray, ref: np.ndarray, t_sig: np.ndarray, sig: np.ndarray) -> tuple[float, float]:
    """Lag (ms) of ``sig`` behind ``ref`` maximizing their normalized cross-correlation, and that correlation.
    Both are sample-and-hold signals at their own times (ns), compared on a 1 ms grid."""
    ok_r, ok_s = np.isfinite(ref), np.isfinite(sig)
    t_ref, ref, t_sig, sig = t_ref[ok_r], ref[ok_r], t_sig[ok_s], sig[ok_s]
    grid = np.arange(max(t_ref[0], t_sig[0] - MIN_LAG_MS * 1e6), min(t_ref[-1], t_sig[-1] - MAX_LAG_MS * 1e6), 1e6)
    a = ref[np.searchsorted(t_ref, grid, side="right") - 1]
    a = (a - a.mean()) / max(a.std(), 1e-12)
    lags = range(MIN_LAG_MS, MAX_LAG_MS + 1)
    scores = []
    for lag in lags:
        b = sig[np.searchsorted(t_sig, grid + lag * 1e6, side="right") - 1]
        scores.append(float(np.mean(a * (b - b.mean())) / max(b.std(), 1e-12)))
    k = int(np.argmax(scores))
    shift = 0.0
    if 0 < k < len(scores) - 1:  # parabola through the peak and its neighbours
        y0, y1, y2 = scores[k - 1], scores[k], scores[k + 1]
        shift = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) if (y0 - 2 * y1 + y2) != 0 else 0.0
    return round(lags[k] + shift, 1), round(scores[k], 3)


def id_lag(sent: np.ndarray, ids: np.ndarray, values: np.ndarray, frame_ms: float) -> tuple[float, float]:
    """Lag (ms) of ``values`` (avatar frames made from driver frames ``ids``) behind the driver's signal
    ``sent`` (per driver frame id): the shift k maximizing corr(values, sent[ids - k]), parabola-refined."""
    ok = np.isfinite(values) & (ids >= MAX_LAG_FRAMES)
    ids, values = ids[ok], values[ok]
    shifts = range(-3, MAX_LAG_FRAMES + 1)
    scores = []
    for k in shifts:
        inside = ids - k < len(sent)
        ref = sent[ids[inside] - k]
        ok_k = np.isfinite(ref)
        scores.append(float(np.corrcoef(values[inside][ok_k], ref[ok_k])[0, 1]))
    j = int(np.nanargmax(scores))
    shift = 0.0
    if 0 < j < len(scores) - 1:
        y0, y1, y2 = scores[j - 1], scores[j], scores[j + 1]
        shift = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) if (y0 - 2 * y1 + y2) != 0 else 0.0
    return round((shifts[j] + shift) * frame_ms, 1), round(scores[j], 3)


def motion_lag(frames: list[np.ndarray], sent_ns: list[int], received: list[tuple[int, int | None, np.ndarray]],
               start_ns: int, fps: float) -> MotionLag:
    """Re-track what was sent and what came back (arrival ns, probe id, pixels); the lag between the two
    mouth (and eye) signals, in time and by frame id."""
    with FaceTracker(TrackerConfig(), static=True) as tracker:
        driver = np.array([face_signals(tracker, f) for f in frames])
        sent = np.array([driver[i % len(frames)] for i in range(len(sent_ns))])
        got = [(t, frame_id, face_signals(tracker, px)) for t, frame_id, px in received if t >= start_ns]
    t_sent = np.array(sent_ns, dtype=np.float64)
    t_got = np.array([t for t, _, _ in got], dtype=np.float64)
    values = np.array([v for _, _, v in got])
    keep = t_sent >= start_ns
    mouth = best_lag(t_sent[keep], sent[keep, 0], t_got, values[:, 0])
    eyes = best_lag(t_sent[keep], sent[keep, 1], t_got, values[:, 1])
    first: dict[int, tuple[float, float]] = {}  # each driver frame's first avatar frame
    for _, frame_id, v in got:
        if frame_id is not None and frame_id < len(sent_ns) and frame_id not in first:
            first[frame_id] = v
    ids = np.array(sorted(first), dtype=np.int64)
    by_id = np.array([first[i] for i in ids]).reshape(-1, 2)
    mouth_id = id_lag(sent[:, 0], ids, by_id[:, 0], 1000.0 / fps)
    eyes_id = id_lag(sent[:, 1], ids, by_id[:, 1], 1000.0 / fps)
    return MotionLag(mouth_ms=mouth[0], mouth_r=mouth[1], eyes_ms=eyes[0], eyes_r=eyes[1],
                     mouth_id_ms=mouth_id[0], mouth_id_r=mouth_id[1], eyes_id_ms=eyes_id[0], eyes_id_r=eyes_id[1])


def session_info(base: str, session_id: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base}/api/sessions/{session_id}", timeout=10) as r:
        return dict(json.loads(r.read()))


async def measure(base: str, frames: list[np.ndarray], mode: str, fps: float, seconds: float) -> Result:
    def make(i: int) -> np.ndarray:
        pixels = frames[i % len(frames)].copy()
        stamp_id(pixels, i)
        return pixels

    track = ArrayVideoTrack(fps, make_frame=make, count=int((seconds + WARMUP_S) * fps))
    first_arrival: dict[int, int] = {}

    session = await whip_connect(base, track, mode="echo" if mode == "echo" else "puppet", keep=lambda i: True)
    await asyncio.sleep(seconds + WARMUP_S + 0.5)
    loop = asyncio.get_running_loop()
    info = await loop.run_in_executor(None, session_info, base, session.session_id)
    await whip_close(base, session)
    for frame in session.received:
        frame_id = read_id(frame.pixels)
        if frame_id is not None and frame_id not in first_arrival:
            first_arrival[frame_id] = frame.arrived_ns
    start = int(WARMUP_S * fps)
    lag = None
    if mode != "overload" and len(track.sent_ns) > start:
        received = [(f.arrived_ns, read_id(f.pixels), f.pixels) for f in session.received]
        lag = await loop.run_in_executor(None, motion_lag, frames, track.sent_ns, received, track.sent_ns[start],
                                         fps)
    lat = [(first_arrival[i] - track.sent_ns[i]) / 1e6 for i in range(start, len(track.sent_ns))
           if i in first_arrival]
    arr = np.array(lat) if lat else np.array([np.nan])
    return Result(mode=mode, fps_in=fps, sent=len(track.sent_ns) - start, returned=len(lat),
                  p50_ms=round(float(np.percentile(arr, 50)), 1), p95_ms=round(float(np.percentile(arr, 95)), 1),
                  max_ms=round(float(arr.max()), 1), server_dropped=int(info["dropped"]),  # type: ignore[call-overload]
                  server_repeated=int(info["frames_repeated"]),  # type: ignore[call-overload]
                  motion=lag)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--overload-fps", type=float, default=90.0)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for the server (repeatable), e.g. retarget.filter_min_cutoff=1.5")
    parser.add_argument("--compare-before", action="store_true",
                        help="also measure the avatar with the filter used before per-channel smoothing")
    parser.add_argument("--compare-workers", type=int, metavar="N",
                        help="also measure the avatar with N engine worker processes (0: in the server process)")
    args = parser.parse_args()

    restrict_host_addresses(("127.0.0.1",))
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    print("rendering the driver frames …", flush=True)
    frames = face_frames(args.fps)
    runs: list[tuple[list[str], list[tuple[str, float]]]] = [
        (args.set, [("echo", args.fps), ("avatar", args.fps), ("overload", args.overload_fps)])]
    if args.compare_before:
        runs.append(([*args.set, *BEFORE], [("avatar-before", args.fps)]))
    if args.compare_workers is not None:
        runs.append(([*args.set, f"server.workers={args.compare_workers}"], [("avatar-workers", args.fps)]))
    results: list[Result] = []
    for overrides, modes in runs:
        # ``livepuppet serve`` in its own process with the probe on.
        with tempfile.TemporaryDirectory() as tmp, \
                ServerProcess(Path(tmp) / "server.log", ("server.latency_probe=true", *overrides)) as server:
            for mode, fps in modes:
                print(f"{mode}: {args.seconds:g} s at {fps:g} fps …", flush=True)
                results.append(asyncio.run(measure(server.base_url, frames, mode, fps, args.seconds)))

    cpu = cpu_model()
    print(f"\nWebRTC loopback latency, 512×512 VP8, {os.cpu_count()} cores ({cpu})")
    print(f"{'mode':<14}{'fps in':>8}{'sent':>7}{'back':>7}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
          f"{'dropped':>9}{'repeated':>10}")
    for r in results:
        print(f"{r.mode:<14}{r.fps_in:>8g}{r.sent:>7}{r.returned:>7}{r.p50_ms:>9}{r.p95_ms:>9}{r.max_ms:>9}"
              f"{r.server_dropped:>9}{r.server_repeated:>10}")
    echo, avatar = results[0], results[1]
    before = next((r for r in results if r.mode == "avatar-before"), None)
    in_workers = next((r for r in results if r.mode == "avatar-workers"), None)
    print(f"\nframe ids: avatar adds {avatar.p50_ms - echo.p50_ms:.1f} ms at p50 and "
          f"{avatar.p95_ms - echo.p95_ms:.1f} ms at p95 over the echo")
    print(f"\nmotion-to-photon (re-tracked, cross-correlated){' with ' + ' '.join(args.set) if args.set else ''}")
    print(f"{'':<14}{'in time (what is seen)':>34}{'by frame id (engine only)':>34}")
    print(f"{'mode':<14}{'mouth ms':>10}{'r':>7}{'eyes ms':>10}{'r':>7}{'mouth ms':>10}{'r':>7}{'eyes ms':>10}{'r':>7}")
    for r in results:
        if r.motion is not None:
            m = r.motion
            shaky = " (r < 0.6 in time: latency too uneven; the machine was busy?)" \
                if min(m.mouth_r, m.eyes_r) < MIN_R else ""
            print(f"{r.mode:<14}{m.mouth_ms:>10}{m.mouth_r:>7}{m.eyes_ms:>10}{m.eyes_r:>7}"
                  f"{m.mouth_id_ms:>10}{m.mouth_id_r:>7}{m.eyes_id_ms:>10}{m.eyes_id_r:>7}{shaky}")
    summary: dict[str, float] = {}
    compared: list[tuple[str, Result | None]] = [("", avatar), ("before_", before), ("workers_", in_workers)]
    for label, run in compared:
        if echo.motion is None or run is None or run.motion is None:
            continue
        e, m = echo.motion, run.motion
        transport = run.p50_ms - echo.p50_ms
        summary.update({
            f"{label}mouth_lag_over_echo_ms": round(m.mouth_ms - e.mouth_ms, 1),
            f"{label}eyes_lag_over_echo_ms": round(m.eyes_ms - e.eyes_ms, 1),
            f"{label}mouth_lag_over_echo_by_id_ms": round(transport + m.mouth_id_ms - e.mouth_id_ms, 1),
            f"{label}eyes_lag_over_echo_by_id_ms": round(transport + m.eyes_id_ms - e.eyes_id_ms, 1),
        })
        print(f"{run.mode}: motion lag over the echo, in time: mouth {m.mouth_ms - e.mouth_ms:+.1f} ms, eyes "
              f"{m.eyes_ms - e.eyes_ms:+.1f} ms; frame ids {transport:+.1f} ms + engine (by id) mouth "
              f"{m.mouth_id_ms - e.mouth_id_ms:+.1f} / eyes {m.eyes_id_ms - e.eyes_id_ms:+.1f} ms = "
              f"{summary[label + 'mouth_lag_over_echo_by_id_ms']:+.1f} / "
              f"{summary[label + 'eyes_lag_over_echo_by_id_ms']:+.1f} ms (goal ≤ +20)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "server_overrides": args.set,
                                     "results": [asdict(r) for r in results], **summary}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
