"""Decoding a stream packet by packet so that a damaged packet costs only itself.

Players decode damaged media with a warning; so do we: a packet the decoder rejects is skipped and
counted, the first one is logged, and the frames that follow keep their own timestamps (the caller
places them by ``pts``, so nothing after a gap moves).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DamageCount:
    """Damaged packets skipped while decoding one stream of one file (mutable: a running counter)."""

    name: str  # e.g. "audio of driver.mp4"
    packets: int = 0
    missing_s: float = 0.0  # time lost in gaps between frames (packets the demuxer itself dropped)
    stream_cut: bool = False  # the demuxer gave up before the end of the file

    def skipped(self, exc: Exception) -> None:
        if self.packets == 0 and self.missing_s == 0.0:
            log.warning("%s has damaged packets; skipping them (%s)", self.name, exc)
        self.packets += 1

    def gap(self, seconds: float) -> None:
        """A hole in the timestamps (its packets never reached the decoder): kept as a hole."""
        if self.packets == 0 and self.missing_s == 0.0:
            log.warning("%s has a %.0f ms gap (damaged or missing packets); it stays silent", self.name,
                        seconds * 1e3)
        self.missing_s += seconds

    @property
    def damaged(self) -> bool:
        return self.packets > 0 or self.missing_s > 0.0


def decode_packets(container: Any, stream: Any, damage: DamageCount) -> Iterator[Any]:
    """Every frame of ``stream`` that decodes, in order; damaged packets are skipped and counted, and a
    demuxer failure mid-file ends the stream early (``damage.stream_cut``) instead of raising."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as exc:  # the container itself is cut or garbled from here on
            log.warning("%s ends early: %s", damage.name, exc)
            damage.stream_cut = True
            break
        try:
            frames = packet.decode()  # a None-payload packet at the end flushes the decoder
        except av.FFmpegError as exc:
            damage.skipped(exc)
            continue
        yield from frames
