"""Reading portraits and videos, writing videos (PyAV for every video/audio encode and decode).

These are the edges where bad input is caught: every failure becomes an :class:`InputError` whose
message names the file and what to do.
"""

from __future__ import annotations

import fractions
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from livepuppet.engine.types import VideoFrame
from livepuppet.errors import InputError
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # larger portraits are refused before decoding (decompression bombs, memory)
MIN_SIDE = 64


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> np.ndarray:
    """Decode an image file → ``(H, W, 3) u8 RGB`` (EXIF orientation applied)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"portrait {p} does not exist")
    return _decode(p, str(p), max_pixels, min_side)


def decode_image(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS,
                 min_side: int = MIN_SIDE) -> np.ndarray:
    """Decode an uploaded JPEG, PNG or WebP → ``(H, W, 3) u8 RGB``. The type is sniffed from the bytes
    (never trusted from a name or header) and the size checked before any pixel is decoded."""
    if not any(data.startswith(magic) for magic in IMAGE_MAGIC) and not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        raise InputError(f"{name} is not a JPEG, PNG or WebP image")
    return _decode(io.BytesIO(data), name, max_pixels, min_side)


IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # JPEG, PNG (WebP: RIFF....WEBP)


def _decode(file: Path | io.BytesIO, name: str, max_pixels: int, min_side: int) -> np.ndarray:
    try:
        with Image.open(file) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise InputError(f"portrait {name} is {w}×{h} = {w * h / 1e6:.0f} MP; the limit is "
                                 f"{max_pixels / 1e6:.0f} MP: downscale it first")
            if min(w, h) < min_side:
                raise InputError(f"portrait {name} is {w}×{h}: too small, it needs at least {min_side} px per side")
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name} is not a readable image ({type(exc).__name__}): use a JPEG, PNG or WebP "
                         "photo") from exc
    return np.asarray(rgb, dtype=np.uint8).copy()


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a driving video contains."""

    width: int
    height: int
    fps: float
    frames: int  # 0 when the container does not say
    has_audio: bool


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video just to describe it; raises :class:`InputError` if it has no decodable video."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"video {p} does not exist")
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise InputError(f"{p} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
            return VideoInfo(width=stream.codec_context.width, height=stream.codec_context.height, fps=float(rate),
                             frames=int(stream.frames or 0), has_audio=bool(container.streams.audio))
    except av.FFmpegError as exc:
        raise InputError(f"{p} is not a readable video ({exc}): use an MP4, WebM or MOV file") from exc


def read_video(path: str | Path) -> Iterator[VideoFrame]:
    """Decode the first video stream → :class:`VideoFrame` with pts in ns from the stream's clock.
    A corrupt stream raises :class:`InputError` (after the frames that did decode)."""
    p = Path(path)
    try:
        with av.open(str(p)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            seq = 0
            for frame in container.decode(stream):
                has_time = frame.pts is not None and frame.time_base is not None
                pts = int(round(float(frame.pts * frame.time_base) * 1e9)) if has_time else seq  # type: ignore[operator]
                yield VideoFrame(pixels=frame.to_ndarray(format="rgb24"), pts=pts, seq=seq)
                seq += 1
            if seq == 0:
                raise InputError(f"{p} has no decodable video frames")
    except (av.FFmpegError, IndexError) as exc:
        raise InputError(f"{p} is not a readable video ({exc}): use an MP4, WebM or MOV file") from exc


def even_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Output size for H.264: at most ``max_side`` per side, both even."""
    k = min(1.0, max_side / max(width, height))
    return max(2, int(width * k) // 2 * 2), max(2, int(height * k) // 2 * 2)


class VideoWriter:
    """H.264 MP4 writer; optionally copies (re-encodes to AAC) the audio of another file on close."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, codec: str = "libx264",
                 crf: int = 20, audio_from: str | Path | None = None) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self._path), mode="w")
        rate = fractions.Fraction(fps).limit_denominator(1001)
        self._stream = cast(VideoStream, self._container.add_stream(codec, rate=rate))
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._size = (width, height)
        self._audio_from = Path(audio_from) if audio_from else None
        self._audio_stream = cast(AudioStream, self._container.add_stream("aac", rate=48000)) if audio_from else None
        self.frames_written = 0

    def write(self, pixels: np.ndarray) -> None:
        """Append one ``(H, W, 3) u8 RGB`` frame (resized to the writer's size if needed)."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        if (frame.width, frame.height) != self._size:
            frame = frame.reformat(width=self._size[0], height=self._size[1])
        frame.pts = self.frames_written
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def _copy_audio(self) -> None:
        assert self._audio_stream is not None and self._audio_from is not None
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        with av.open(str(self._audio_from)) as source:
            if not source.streams.audio:
                return
            for frame in source.decode(source.streams.audio[0]):
                frame.pts = None
                for out in resampler.resample(frame):
                    for packet in self._audio_stream.encode(out):
                        self._container.mux(packet)
        for out in resampler.resample(None):
            for packet in self._audio_stream.encode(out):
                self._container.mux(packet)
        for packet in self._audio_stream.encode(None):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        if self._audio_stream is not None:
            self._copy_audio()
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
