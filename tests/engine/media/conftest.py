"""Media made on the fly for the damaged/unusual-media tests: real encoders (PyAV), damage made by
overwriting the bytes of encoded packets, timestamps and side data set the way phones and editors do."""

from __future__ import annotations

import fractions
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

BEEP_HZ = 1000.0
BEEP_S = 0.03


def beeps(times_s: Sequence[float], duration_s: float, rate: int) -> np.ndarray:
    """``(n,) f32`` silence with short 1 kHz beeps starting at ``times_s``: events whose place is measurable."""
    pcm = np.zeros(int(round(duration_s * rate)), np.float32)
    n = int(BEEP_S * rate)
    tone = 0.5 * np.sin(2 * np.pi * BEEP_HZ * np.arange(n) / rate).astype(np.float32)
    for t in times_s:
        start = int(round(t * rate))
        pcm[start:start + n] = tone[: len(pcm) - start]
    return pcm


def find_beeps(path: Path, threshold: float = 0.1) -> list[float]:
    """Onset times (s, on the file's clock) of the beeps in ``path``'s first audio stream."""
    onsets, prev_end, last_loud = [], -1.0, -1.0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            x = np.abs(frame.to_ndarray().reshape(len(frame.layout.channels), -1)).max(axis=0)
            t0 = float(frame.pts * frame.time_base)
            for i in np.flatnonzero(x > threshold):
                t = t0 + i / frame.sample_rate
                if t - last_loud > 0.1:
                    onsets.append(t)
                last_loud = t
            prev_end = t0 + frame.samples / frame.sample_rate
    assert prev_end > 0
    return onsets


def audio_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        end = 0.0
        for frame in container.decode(container.streams.audio[0]):
            end = float(frame.pts * frame.time_base) + frame.samples / frame.sample_rate
    return end


def damaged(packet: av.Packet, rng: np.random.Generator, keep: int = 0, opus: bool = False) -> av.Packet:
    """A copy of ``packet`` whose payload after ``keep`` bytes is random (Opus: an impossible frame length,
    which the decoder must reject: random Opus bytes often still decode)."""
    data = bytearray(bytes(packet))
    if opus:  # code 2 (two frames), the first said to be 1272 bytes long: longer than the packet (RFC 6716 §3.2.4)
        data[0] = (data[0] & 0xFC) | 2
        data[1:3] = bytes([252, 255])
    else:
        data[keep:] = rng.integers(0, 256, len(data) - keep, dtype=np.uint8).tobytes()
    out = av.Packet(bytes(data))
    out.pts, out.dts, out.time_base, out.duration = packet.pts, packet.dts, packet.time_base, packet.duration
    out.is_keyframe = packet.is_keyframe
    return out


def encode_audio(stream: av.audio.stream.AudioStream, pcm: np.ndarray, rate: int,
                 start_sample: int = 0) -> list[av.Packet]:
    """Encode mono ``pcm`` in encoder-sized frames stamped from ``start_sample``; returns the packets."""
    size = stream.codec_context.frame_size or 1024
    layout = stream.layout.name
    channels = len(stream.layout.channels)
    fmt = stream.format.name
    packets: list[av.Packet] = []
    for pos in range(0, len(pcm), size):
        chunk = pcm[pos:pos + size]
        data = np.repeat(chunk[None, :], channels, axis=0)
        if not stream.format.is_planar:
            data = data.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=layout)
        frame.sample_rate = rate
        frame.pts = start_sample + pos
        packets += stream.encode(frame)
    return packets + list(stream.encode(None))


AUDIO_CODECS = {  # name: (container extension, encoder, rate, layout)
    "aac": (".m4a", "aac", 48000, "mono"),
    "mp3": (".mp3", "libmp3lame", 44100, "mono"),
    "ac3": (".mkv", "ac3", 48000, "stereo"),
    "opus": (".webm", "libopus", 48000, "mono"),
}


HEADER_BYTES = {"mp3": 4}  # raw MP3 has no timestamps: its frame headers are its clock


def write_audio_file(path: Path, codec: str, pcm_at_rate: np.ndarray,
                     damage_s: Sequence[tuple[float, float]] = (), start_s: float = 0.0) -> int:
    """An audio-only file with ``codec``; packets that start inside a ``damage_s`` window (seconds) are
    corrupted. Returns how many were."""
    _, encoder, rate, layout = AUDIO_CODECS[codec]
    rng = np.random.default_rng(7)
    hits = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=rate)
        stream.layout = layout
        stream.format = "flt" if codec == "opus" else "fltp"
        container.start_encoding()
        packets = encode_audio(stream, pcm_at_rate, rate, int(round(start_s * rate)))
        for packet in packets:
            t = float(packet.pts * packet.time_base) if packet.pts is not None else -1.0
            if any(a <= t < b for a, b in damage_s):  # payload damage; frame headers kept (raw MP3/AC3 ...
                packet = damaged(packet, rng, keep=HEADER_BYTES.get(codec, 0), opus=codec == "opus")
                hits += 1  # ... have no timestamps, only their frames)
            packet.stream = stream
            container.mux(packet)
    return hits


def driver_frames(driver_video: Path) -> list[np.ndarray]:
    with av.open(str(driver_video)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def remake_driver(driver_video: Path, path: Path, *, times_s: Sequence[float] | None = None, rotation: int = 0,
                  audio: np.ndarray | None = None, audio_start_s: float = 0.0, damage_video: Iterable[int] = (),
                  damage_audio: Iterable[int] = ()) -> list[np.ndarray]:
    """Re-encode the face video ``driver_video`` (24 frames at 12 fps) into ``path`` with optional frame
    times (VFR), a display rotation (the picture stored turned the other way, as phones do), a 48 kHz
    mono AAC track starting at ``audio_start_s`` and damaged packets. Returns the upright frames."""
    frames = driver_frames(driver_video)
    times = list(times_s) if times_s is not None else [i / 12 for i in range(len(frames))]
    rng = np.random.default_rng(3)
    bad_video, bad_audio = set(damage_video), set(damage_audio)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=12)
        stored = [np.ascontiguousarray(np.rot90(f, k=-(rotation // 90))) for f in frames]
        video.height, video.width = stored[0].shape[:2]
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = fractions.Fraction(1, 1000)  # millisecond stamps: any frame times
        video.options = {"bf": "0"}
        if rotation:
            video.set_display_rotation(rotation)
        audio_stream = container.add_stream("aac", rate=48000) if audio is not None else None
        if audio_stream is not None:
            audio_stream.layout = "mono"
        container.start_encoding()
        packets: list[av.Packet] = []
        for pixels, t in zip(stored, times, strict=True):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = int(round(t * 1000))
            packets += video.encode(frame)
        packets += video.encode(None)
        for i, packet in enumerate(packets):
            if i in bad_video:
                packet = damaged(packet, rng, keep=5)
            packet.stream = video
            container.mux(packet)
        if audio_stream is not None and audio is not None:
            for i, packet in enumerate(encode_audio(audio_stream, audio, 48000, int(round(audio_start_s * 48000)))):
                if i in bad_audio:
                    packet = damaged(packet, rng)
                packet.stream = audio_stream
                container.mux(packet)
    return frames


@pytest.fixture()
def portrait_png(tmp_path: Path, portrait: np.ndarray) -> Path:
    from PIL import Image

    path = tmp_path / "portrait.png"
    Image.fromarray(portrait).save(path)
    return path


@pytest.fixture(scope="session")
def kit() -> Any:
    """This module's media makers and measurers (test modules cannot import a conftest by name)."""
    return sys.modules[__name__]
