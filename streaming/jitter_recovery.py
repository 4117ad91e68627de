"""Quick video recovery for aiortc receivers after lost packets that retransmission could not bring back.

aiortc's video jitter buffer hands frames to the decoder strictly in order: when the packet at its head is
lost for good (after a blackout the sender's retransmission history no longer has it), it waits until 512
newer packets have piled up behind the hole before it drops anything and asks for a keyframe (PLI). That
is 2 s of a 2.5 Mbit/s stream and much longer for a slow one, and it happens on the server's side of every
webcam stream (aiortc receives the camera) as on aiortc clients. Here a hole at the head that has been
waited on for :data:`HOLE_WAIT_S` (no frame came out while packets kept arriving) is skipped, with the
frames around it, and a keyframe is requested at once, so recovery takes one round trip plus one keyframe.
"""

from __future__ import annotations

import aiortc.rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from livepuppet.engine.clock import Clock, MonotonicClock

HOLE_WAIT_S = 0.25  # NACK retransmissions arrive within a round trip; after this the packet is gone


class RecoveringJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, plus skipping a head-of-line hole that retransmission did not fill."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch=prefetch, is_video=is_video)
        self._stuck_since: int | None = None
        self.clock: Clock = MonotonicClock()  # aiortc builds the buffer; tests swap in a ManualClock

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if not self._is_video or frame is not None or self._origin is None:
            self._stuck_since = None
            return pli, frame
        now = self.clock.now_ns()
        if self._stuck_since is None:  # packets arrive but no frame comes out (yet)
            self._stuck_since = now
            return pli, frame
        if now - self._stuck_since < HOLE_WAIT_S * 1e9 or not self._skip_hole(packet.sequence_number):
            return pli, frame
        self._stuck_since = None
        return True, self._remove_frame(packet.sequence_number)

    def _skip_hole(self, newest: int) -> bool:
        """Drop everything up to the first gap, the gap, and the (possibly partial) frame after it; False
        (nothing dropped) when there is no gap before ``newest``."""
        origin = self._origin
        assert origin is not None
        gap = next((i for i in range(((newest - origin) & 0xFFFF) + 1)
                    if self._packets[(origin + i) % self._capacity] is None), None)
        if gap is None:
            return False
        timestamp = None
        for i in range(self._capacity):
            pos = (origin + i) % self._capacity
            packet = self._packets[pos]
            if i > gap:
                if packet is None and timestamp is not None:
                    break
                if packet is not None:
                    if timestamp is None:
                        timestamp = packet.timestamp
                    elif packet.timestamp != timestamp:
                        break
            self._packets[pos] = None
        else:
            i = self._capacity
        self._origin = (origin + i) & 0xFFFF
        return True


def install_jitter_recovery() -> None:
    """Make every aiortc receiver in this process use :class:`RecoveringJitterBuffer` (idempotent)."""
    aiortc.rtcrtpreceiver.JitterBuffer = RecoveringJitterBuffer  # type: ignore[misc]
