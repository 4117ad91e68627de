"""Copying a file's audio into a :class:`MediaWriter` as the video is written, in place and in sync.

Each decoded chunk keeps its presentation time: audio that starts after 0 stays there, and a damaged
packet (skipped, counted) leaves a silent gap of its own length instead of pulling the rest earlier.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from livepuppet.engine.media.media_writer import MediaWriter
from livepuppet.engine.media.packets import DamageCount, decode_packets
from livepuppet.errors import InputError

WRITER_RATE = 48_000


def audio_channels(path: str | Path) -> int:
    """Channels the copy of ``path``'s first audio stream gets: 1 for mono, else 2 (mixed down)."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise InputError(f"{path} has no audio stream")
        return 1 if container.streams.audio[0].codec_context.channels == 1 else 2


class AudioFeed:
    """The first audio stream of ``path`` as ``(pcm (C, n) f32, start_s)`` chunks at ``rate`` Hz."""

    def __init__(self, path: str | Path, rate: int = WRITER_RATE, channels: int = 2) -> None:
        self.path = Path(path)
        self.rate = rate
        self.channels = channels
        self.damage = DamageCount(name=f"the audio of {self.path.name}")

    def chunks(self) -> Iterator[tuple[np.ndarray, float]]:
        layout = "mono" if self.channels == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.rate)
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.audio:
                    return
                stream = container.streams.audio[0]
                next_s = 0.0
                for frame in decode_packets(container, stream, self.damage):
                    for out in resampler.resample(frame):
                        yield from self._placed(out, next_s)
                        next_s = self._end(out, next_s)
                for out in resampler.resample(None):
                    yield from self._placed(out, next_s)
                    next_s = self._end(out, next_s)
        except av.FFmpegError as exc:
            raise InputError(f"the audio of {self.path} cannot be read ({exc})") from exc

    def _placed(self, frame: av.AudioFrame, fallback_s: float) -> Iterator[tuple[np.ndarray, float]]:
        pcm = frame.to_ndarray().reshape(self.channels, -1).astype(np.float32, copy=False)
        if pcm.shape[1]:
            yield pcm, self._start(frame, fallback_s)

    def _start(self, frame: av.AudioFrame, fallback_s: float) -> float:
        if frame.pts is None or frame.time_base is None:
            return fallback_s
        return float(frame.pts * frame.time_base)

    def _end(self, frame: av.AudioFrame, fallback_s: float) -> float:
        return self._start(frame, fallback_s) + frame.samples / self.rate


class AudioCopier:
    """Feeds a file's audio into a writer up to the time the video has reached (interleaved, flat memory)."""

    def __init__(self, feed: AudioFeed, writer: MediaWriter) -> None:
        if writer.audio_rate != feed.rate or writer.audio_channels != feed.channels:
            raise ValueError("the writer's audio rate/channels must match the feed's")
        self._chunks = feed.chunks()
        self._writer = writer
        self._held: tuple[np.ndarray, float] | None = None
        self.damage = feed.damage

    def advance(self, until_s: float) -> None:
        """Write every chunk that starts before ``until_s``."""
        while True:
            if self._held is None:
                self._held = next(self._chunks, None)
                if self._held is None:
                    return
            pcm, start = self._held
            if start >= until_s:
                return
            if start + pcm.shape[1] / self._writer.audio_rate > 0:  # audio before 0 (priming) is dropped
                self._writer.write_audio(pcm, at_s=start)
            self._held = None

    def finish(self) -> None:
        """Write the rest of the audio."""
        self.advance(float("inf"))
