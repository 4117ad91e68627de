"""Real-time factor of the audio→mouth runtime (NumPy log-mel + onnxruntime GRU) on one thread.

What: for ``--seconds`` of speech (espeak-ng sentences if libespeak-ng is installed, else a harmonic glide), it
times (``time.perf_counter_ns``, after a warm-up)

* features: ``log_mel`` of the whole clip;
* offline: ``AudioMouthModel.infer`` (features + model + frame objects);
* streaming: ``MouthStream.push`` with 20 ms chunks (the WebRTC/WebSocket case): median and p95 per chunk;
* first frame: audio that must arrive before the first mouth frame (model look-ahead) plus its compute.

Real-time factor = audio seconds / wall seconds (higher is better; the target is ≥ 100× on one core).
Run: ``python bench/bench_audio.py [--seconds 60] [--threads 1] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from livepuppet.engine.speech.features import SAMPLE_RATE, log_mel, resample
from livepuppet.engine.speech.mouth_model import AudioMouthModel

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "audio.json"
CHUNK = 320  # 20 ms at 16 kHz


def speech(seconds: float) -> tuple[np.ndarray, str]:
    """``(n,) f32`` test speech and what it is."""
    try:
        from livepuppet.export.audio.espeak import EspeakSynth, VoiceSettings, espeak_available

        if espeak_available():
            synth = EspeakSynth()
            parts: list[np.ndarray] = []
            total = 0
            while total < seconds * SAMPLE_RATE:
                utt = synth.synthesize("Bob bought a map of the moon, and Pam sent a postcard home.",
                                       VoiceSettings("en-us+f5", rate=150 + 10 * (len(parts) % 5)))
                parts.append(resample(utt.audio, utt.rate, SAMPLE_RATE))
                total += len(parts[-1])
            return np.concatenate(parts)[: int(seconds * SAMPLE_RATE)], "espeak-ng en-us+f5"
    except OSError:
        pass
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(130 + 30 * np.sin(2 * np.pi * t)) / SAMPLE_RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 10))
    return (0.2 * x / np.abs(x).max()).astype(np.float32), "harmonic glide"


def best_of(fn: object, repeats: int) -> float:
    """Minimum wall seconds of ``fn()`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter_ns() - start) / 1e9)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", help="ONNX file (default: the shipped one)")
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args()

    model = AudioMouthModel.load(args.model, threads=args.threads)
    pcm, kind = speech(args.seconds)
    seconds = len(pcm) / SAMPLE_RATE
    model.infer(pcm[:SAMPLE_RATE])  # warm-up

    features_s = best_of(lambda: log_mel(pcm), 3)
    offline_s = best_of(lambda: model.infer(pcm), 3)

    stream = model.stream()
    chunk_ms = []
    for i in range(0, len(pcm), CHUNK):
        start = time.perf_counter_ns()
        stream.push(pcm[i : i + CHUNK])
        chunk_ms.append((time.perf_counter_ns() - start) / 1e6)
    stream.flush()
    streaming_s = sum(chunk_ms) / 1e3

    first = model.stream()
    start = time.perf_counter_ns()
    produced = 0
    pushed = 0
    while not produced:
        produced = len(first.push(pcm[pushed : pushed + CHUNK]))
        pushed += CHUNK
    first_compute_ms = (time.perf_counter_ns() - start) / 1e6

    rows = [
        ("features (log-mel)", features_s, seconds / features_s),
        ("offline infer", offline_s, seconds / offline_s),
        ("streaming, 20 ms chunks", streaming_s, seconds / streaming_s),
    ]
    result = {
        "audio": kind,
        "audio_seconds": round(seconds, 2),
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "model": str(model.path),
        "lookahead_ms": round(model.lookahead_s * 1000, 1),
        "rtf": {name: round(rtf, 1) for name, _, rtf in rows},
        "chunk_ms_median": round(float(np.median(chunk_ms)), 4),
        "chunk_ms_p95": round(float(np.percentile(chunk_ms, 95)), 4),
        "first_frame": {"audio_needed_ms": pushed / SAMPLE_RATE * 1000, "compute_ms": round(first_compute_ms, 3)},
    }
    print(f"audio→mouth runtime, {seconds:.0f} s of {kind}, {args.threads} thread(s), {result['cpu']}")
    print(f"{'stage':<26}{'wall s':>10}{'× real time':>14}")
    for name, wall, rtf in rows:
        print(f"{name:<26}{wall:>10.3f}{rtf:>14.0f}")
    print(f"per 20 ms chunk: median {result['chunk_ms_median']:.3f} ms, p95 {result['chunk_ms_p95']:.3f} ms")
    print(f"first frame: after {pushed / SAMPLE_RATE * 1000:.0f} ms of audio (look-ahead "
          f"{model.lookahead_s * 1000:.0f} ms) + {first_compute_ms:.2f} ms compute")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
