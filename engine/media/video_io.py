"""Reading driving videos (PyAV): frames upright, timestamped, damaged packets skipped.

These are the edges where bad input is caught: every failure becomes an :class:`InputError` whose
message names the file and what to do. Portrait decoding lives in :mod:`.image_io` and writing in
:mod:`.media_writer`; both are re-exported here for older imports.
"""

from __future__ import annotations

import fractions
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from livepuppet.engine.media.image_io import MAX_PIXELS, MIN_SIDE, decode_image, load_image
from livepuppet.engine.media.media_writer import MediaWriter
from livepuppet.engine.media.packets import DamageCount, decode_packets
from livepuppet.engine.types import VideoFrame
from livepuppet.errors import InputError

__all__ = ["MAX_PIXELS", "MIN_SIDE", "DamageCount", "MediaWriter", "VideoInfo", "VideoWriter", "decode_image",
           "even_size", "load_image", "probe_video", "read_video"]

STILL_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif_pipe", "pgm_pipe",
                 "ppm_pipe", "pam_pipe", "qoi_pipe", "jpegxl_pipe", "dpx_pipe", "j2k_pipe")
VIDEO_HINT = "use an MP4, WebM or MOV file"
COMMON_RATES = (12.0, 15.0, 24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 48.0, 50.0, 60000 / 1001, 60.0, 90.0,
                100.0, 120.0)


def nice_rate(fps: float) -> float:
    """A measured average rate (VFR, millisecond time bases: 11.998) → the common rate within 1% of it,
    else itself: the constant output rate a driver gets."""
    best = min(COMMON_RATES, key=lambda r: abs(r - fps))
    return best if abs(best - fps) <= 0.01 * fps else fps


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a driving video contains (``width``/``height`` as displayed, after rotation)."""

    width: int
    height: int
    fps: float
    frames: int  # 0 when the container does not say
    has_audio: bool
    rotation: int = 0  # degrees counter-clockwise the stored picture is turned for display (0, 90, 180, 270)
    duration_s: float = 0.0  # the video stream's length as the container states it; 0 when unknown


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video just to describe it; raises :class:`InputError` if it has no decodable video or is a
    still image."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"video {p} does not exist")
    still = f"{p} is a still image, not a video: a driver must be a video (a photo is a --source)"
    try:
        with av.open(str(p)) as container:
            if container.format.name in STILL_FORMATS:
                raise InputError(still)
            if not container.streams.video:
                raise InputError(f"{p} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
            rotation, frames = _peek(container, stream)
            if frames == 1:  # a one-frame GIF or video is a picture too
                raise InputError(still)
            w, h = stream.codec_context.width, stream.codec_context.height
            if rotation in (90, 270):
                w, h = h, w
            duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
            return VideoInfo(width=w, height=h, fps=nice_rate(float(rate)), frames=int(stream.frames or 0),
                             has_audio=bool(container.streams.audio), rotation=rotation,
                             duration_s=duration if duration > 0 else 0.0)
    except av.FFmpegError as exc:
        raise InputError(f"{p} is not a readable video ({exc}): {VIDEO_HINT}") from exc


def _peek(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> tuple[int, int]:
    """The display rotation of the first decodable frame (phones store it as side data) and how many
    frames decode, counting to 2 at most."""
    rotation, frames = 0, 0
    for frame in decode_packets(container, stream, DamageCount(name="probe")):
        if frames == 0:
            rotation = display_turns(frame) * 90
        frames += 1
        if frames == 2:
            break
    return rotation, frames


def display_turns(frame: av.VideoFrame) -> int:
    """Quarter turns counter-clockwise that show ``frame`` upright (its display matrix, 0 if none)."""
    return round(float(frame.rotation or 0) / 90.0) % 4


def read_video(path: str | Path, damage: DamageCount | None = None) -> Iterator[VideoFrame]:
    """Decode the first video stream → upright :class:`VideoFrame` with pts in ns from the stream's
    clock. Damaged packets are skipped and counted in ``damage`` (the next frame keeps its own time)."""
    p = Path(path)
    damage = damage if damage is not None else DamageCount(name=f"the video of {p.name}")
    seq = 0
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise InputError(f"{p} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in decode_packets(container, stream, damage):
                has_time = frame.pts is not None and frame.time_base is not None
                pts = int(round(float(frame.pts * frame.time_base) * 1e9)) if has_time else seq  # type: ignore[operator]
                pixels = frame.to_ndarray(format="rgb24")
                turns = display_turns(frame)
                if turns:
                    pixels = np.ascontiguousarray(np.rot90(pixels, k=turns))
                yield VideoFrame(pixels=pixels, pts=pts, seq=seq)
                seq += 1
    except av.FFmpegError as exc:
        raise InputError(f"{p} is not a readable video ({exc}): {VIDEO_HINT}") from exc
    if seq == 0:
        raise InputError(f"{p} has no decodable video frames: {VIDEO_HINT}")


def even_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Output size for H.264: at most ``max_side`` per side, both even."""
    k = min(1.0, max_side / max(width, height))
    return max(2, int(width * k) // 2 * 2), max(2, int(height * k) // 2 * 2)


class VideoWriter(MediaWriter):
    """The older writer API: ``write(pixels)``, ``close()``; optionally copies another file's audio (in
    place, damaged packets skipped) on close. Atomic like :class:`MediaWriter`."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, codec: str = "libx264",
                 crf: int = 20, audio_from: str | Path | None = None) -> None:
        from livepuppet.engine.media.audio_mux import WRITER_RATE, audio_channels

        self._audio_from = Path(audio_from) if audio_from else None
        channels = audio_channels(self._audio_from) if self._audio_from else 1
        super().__init__(path, width, height, fps, crf=crf, codec=codec,
                         audio_rate=WRITER_RATE if self._audio_from else None, audio_channels=channels,
                         inputs=(self._audio_from,))

    def write(self, pixels: np.ndarray) -> None:
        self.write_frame(pixels)

    def close(self) -> None:
        from livepuppet.engine.media.audio_mux import AudioCopier, AudioFeed

        if self._audio_from is not None and not self._closed:
            try:
                AudioCopier(AudioFeed(self._audio_from, self.audio_rate, self.audio_channels), self).finish()
            except BaseException:
                self.discard()
                raise
        self.commit()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()
