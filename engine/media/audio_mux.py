"""Copying a file's audio into a :class:`MediaWriter` as the video is written, in place and in sync.

Each decoded chunk keeps its presentation time: audio that starts after 0 stays there, and a damaged
packet (skipped, counted) leaves a silent gap of its own length instead of pulling the rest earlier.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import av
import numpy as np
from livepuppet.engine.media.media_writer import MediaWriter
from livepuppet.engine.media.packets import DamageCount, decode_packets
from livepuppet.errors import InputError

WRITER_RATE = 48_000
AUDIO_HINT = "use WAV, MP3, OGG, FLAC or M4A"
GAP_S = 0.002  # a jump in timestamps beyond this between chunks is missing audio


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
        resampler: av.AudioResampler | None = None
        source_kind: tuple[str, str, int] | None = None
        next_s: float | None = None
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.audio:
                    return
                stream = container.streams.audio[0]
                for frame in decode_packets(container, stream, self.damage):
                    kind = (frame.format.name, frame.layout.name, frame.sample_rate)
                    if kind != source_kind:  # a damaged header can change the decoder's output layout
                        if resampler is not None:
                            for out in resampler.resample(None):
                                next_s = yield from self._placed(out, next_s)
                        resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.rate)
                        source_kind = kind
                    assert resampler is not None
                    for out in resampler.resample(frame):
                        next_s = yield from self._placed(out, next_s)
                if resampler is not None:
                    for out in resampler.resample(None):
                        next_s = yield from self._placed(out, next_s)
        except av.FFmpegError as exc:
            raise InputError(f"{self.path} is not a readable audio file ({exc}): {AUDIO_HINT}") from exc

    def _placed(self, frame: av.AudioFrame, expected_s: float | None
                ) -> Generator[tuple[np.ndarray, float], None, float | None]:
        """Yield the frame's samples at its own time; returns where the next frame should start."""
        pcm = frame.to_ndarray().reshape(self.channels, -1).astype(np.float32, copy=False)
        if not pcm.shape[1]:
            return expected_s
        if frame.pts is None or frame.time_base is None:
            start = expected_s or 0.0
        else:
            start = float(frame.pts * frame.time_base)
        if expected_s is not None and start - expected_s > GAP_S:
            self.damage.gap(start - expected_s)
        yield pcm, start
        return start + pcm.shape[1] / self.rate


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
