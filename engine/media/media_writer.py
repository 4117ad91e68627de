"""Streaming video + audio writer: frames and audio chunks go in as they are made, memory stays flat,
and the file appears at its path only when it is complete.

Usage (this is the API ``speak`` and ``animate`` write through)::

    with MediaWriter("out.mp4", width, height, fps, audio_rate=16000, audio_channels=1,
                     inputs=(portrait, audio_file)) as writer:   # inputs: files -o must not be
        for pixels in frames:                 # (H, W, 3) u8 RGB; frame k is shown at k / fps
            writer.write_frame(pixels)
            writer.write_audio(pcm_chunk)     # (n,) or (C, n) f32 [-1, 1] at audio_rate, appended
        writer.write_audio(pcm, at_s=2.5)     # or placed at a time: a gap becomes silence, an overlap is trimmed
    # leaving the block normally commits (moves the file into place); an exception, Ctrl-C included,
    # discards it and leaves the destination as it was. ``commit()`` / ``discard()`` do the same by hand.

The container and codecs follow the extension (see :mod:`.formats`): H.264 + AAC for .mp4/.mov/.mkv,
VP9 + Opus for .webm. Audio is encoded with explicit sample timestamps from 0, so the muxer records the
encoder's priming (AAC's 1024 samples) and players start the audio exactly at 0: no constant lag.
"""

from __future__ import annotations

import fractions
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import cast

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from livepuppet.engine.media.formats import output_format
from livepuppet.engine.media.output_file import AtomicFile
from livepuppet.errors import InputError

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
TIMING_SLACK = 2  # samples: placement jitter below this is resampler rounding, not a gap


class MediaWriter:
    """Video (+ optional audio) file writer with atomic commit; not thread-safe."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, *, crf: int = 20,
                 codec: str | None = None, audio_rate: int | None = None, audio_channels: int = 1,
                 inputs: Iterable[str | Path | None] = ()) -> None:
        if not (np.isfinite(fps) and fps > 0):
            raise InputError(f"frame rate {fps} is not a positive number")
        self.format = output_format(path, codec)
        if audio_rate is not None and self.format.audio_codec == "libopus" and audio_rate not in OPUS_RATES:
            raise InputError(f"{path}: Opus audio needs a rate in {OPUS_RATES}, not {audio_rate}")
        self.path = Path(path)
        self._file = AtomicFile(self.path, inputs)
        try:
            self._container = av.open(str(self._file.temp), mode="w", format=self.format.container)
            self._video = self._add_video(width, height, fps, crf)
            self._audio = self._add_audio(audio_rate, audio_channels) if audio_rate else None
            self._container.start_encoding()  # opens the encoders: the audio frame size is known from here
        except BaseException:
            self._file.discard()
            raise
        self._size = (width, height)
        self.audio_rate = audio_rate or 0
        self.audio_channels = audio_channels
        self._pending = np.zeros((audio_channels, 0), np.float32)  # audio not yet a whole encoder frame
        self._audio_pts = 0  # samples handed to the encoder
        self.frames_written = 0
        self._closed = False

    def _add_video(self, width: int, height: int, fps: float, crf: int) -> VideoStream:
        rate = fractions.Fraction(fps).limit_denominator(1001)
        stream = cast(VideoStream, self._container.add_stream(self.format.video_codec, rate=rate))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if self.format.video_codec.startswith("libvpx"):  # CRF mode, fast settings (VP9 is slow otherwise)
            vp_crf = min(63, crf + 11)  # x264 CRF 20 looks about like VP9 CRF 31
            stream.options = {"crf": str(vp_crf), "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
        elif self.format.video_codec in ("libx264", "libx265"):
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        return stream

    def _add_audio(self, rate: int, channels: int) -> AudioStream:
        if channels not in (1, 2):
            raise InputError(f"audio must be mono or stereo, not {channels} channels")
        stream = cast(AudioStream, self._container.add_stream(self.format.audio_codec, rate=rate))
        stream.layout = "mono" if channels == 1 else "stereo"
        stream.format = "fltp" if self.format.audio_codec != "libopus" else "flt"
        return stream

    @property
    def audio_written_s(self) -> float:
        """Seconds of audio accepted so far (encoded or pending)."""
        return (self._audio_pts + self._pending.shape[1]) / self.audio_rate if self.audio_rate else 0.0

    def write_frame(self, pixels: np.ndarray) -> None:
        """Append one ``(H, W, 3) u8 RGB`` frame (resized to the writer's size if needed)."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        if (frame.width, frame.height) != self._size:
            frame = frame.reformat(width=self._size[0], height=self._size[1])
        frame.pts = self.frames_written
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def write_audio(self, pcm: np.ndarray, at_s: float | None = None) -> None:
        """Add ``(n,)`` or ``(C, n) f32 [-1, 1]`` samples at ``audio_rate``: appended, or placed at
        ``at_s`` seconds (silence fills a gap before it, samples before the current end are dropped)."""
        if self._audio is None:
            raise ValueError("this writer was opened without audio (audio_rate=None)")
        samples = np.asarray(pcm, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None, :]
        if samples.shape[0] != self.audio_channels:
            samples = (np.repeat(samples.mean(axis=0, keepdims=True), self.audio_channels, axis=0)
                       if samples.shape[0] != 1 else np.repeat(samples, self.audio_channels, axis=0))
        if at_s is not None:
            start = round(at_s * self.audio_rate)
            have = self._audio_pts + self._pending.shape[1]
            if start > have + TIMING_SLACK:
                self._silence(start - have)
            elif start < have - TIMING_SLACK:
                samples = samples[:, have - start:]
        if samples.shape[1]:
            self._pending = np.concatenate([self._pending, np.clip(samples, -1.0, 1.0)], axis=1)
            self._encode_pending(final=False)

    def _silence(self, count: int) -> None:
        step = 48_000
        while count > 0:
            n = min(step, count)
            self._pending = np.concatenate([self._pending, np.zeros((self.audio_channels, n), np.float32)], axis=1)
            self._encode_pending(final=False)
            count -= n

    def _encode_pending(self, final: bool) -> None:
        assert self._audio is not None
        size = self._audio.codec_context.frame_size or 1024  # 0: any size (PCM-like encoders)
        while self._pending.shape[1] >= size or (final and self._pending.shape[1]):
            chunk, self._pending = self._pending[:, :size], self._pending[:, size:]
            planar = self._audio.format.is_planar
            data = np.ascontiguousarray(chunk if planar else chunk.T.reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(data, format=self._audio.format.name, layout=self._audio.layout.name)
            frame.sample_rate = self.audio_rate
            frame.pts = self._audio_pts
            frame.time_base = fractions.Fraction(1, self.audio_rate)
            self._audio_pts += chunk.shape[1]
            for packet in self._audio.encode(frame):
                self._container.mux(packet)

    def commit(self) -> Path:
        """Flush the encoders, close the container and move the file into place."""
        if self._closed:
            return self.path
        try:
            for packet in self._video.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._encode_pending(final=True)
                for packet in self._audio.encode(None):
                    self._container.mux(packet)
            self._container.close()
        except BaseException:
            self.discard()
            raise
        self._closed = True
        return self._file.commit()

    def discard(self) -> None:
        """Drop everything written; the destination is left as it was."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError, ValueError):
            pass  # a half-written container may not close cleanly; it is deleted either way
        self._file.discard()

    def __enter__(self) -> MediaWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
