"""The recovering jitter buffer: a lost head packet is waited on for a round trip (a retransmission fills
it as usual), then skipped with a keyframe request, instead of after 512 newer packets as in aiortc."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket
from livepuppet.engine.clock import ManualClock
from livepuppet.streaming.jitter_recovery import HOLE_WAIT_S, RecoveringJitterBuffer


def packet(seq: int, frame: int) -> RtpPacket:
    p = RtpPacket(sequence_number=seq, timestamp=frame * 3000)
    p._data = bytes([frame % 256])  # type: ignore[attr-defined]
    return p


def feed(buffer: JitterBuffer, clock: ManualClock | None, lost: set[int], frames: int = 40,
         per_frame: int = 3) -> tuple[list[int], int]:
    """Frames of ``per_frame`` packets, 33 ms apart, minus the ``lost`` sequence numbers; returns the
    frames handed out (by number) and how many keyframe requests were raised."""
    out, plis = [], 0
    for f in range(frames):
        for k in range(per_frame):
            seq = 1000 + f * per_frame + k
            if seq in lost:
                continue
            pli, frame = buffer.add(packet(seq, f))
            plis += pli
            if frame is not None:
                out.append(frame.timestamp // 3000)
        if clock is not None:
            clock.advance(0.033)
    return out, plis


def test_a_hole_that_stays_is_skipped_after_a_round_trip_with_a_keyframe_request() -> None:
    clock = ManualClock()
    buffer = RecoveringJitterBuffer(capacity=512, is_video=True)
    buffer.clock = clock
    lost = set(range(1000 + 5 * 3, 1000 + 10 * 3))  # frames 5-9 never arrive (a blackout)
    out, plis = feed(buffer, clock, lost)
    assert out[:4] == [0, 1, 2, 3]  # frame 4 (before the gap) and 10 (after it) may be partial: dropped
    assert plis >= 1
    resumed = next(f for f in out if f >= 10)
    assert resumed <= 10 + int(HOLE_WAIT_S / 0.033) + 2  # within the wait plus the partial frame skipped
    assert out[-1] >= 35  # and it keeps going
    stock, stock_plis = feed(JitterBuffer(capacity=512, is_video=True), None, lost)
    assert stock == [0, 1, 2, 3] and stock_plis == 0  # aiortc's own buffer is still waiting


def test_a_lossless_stream_is_untouched() -> None:
    clock = ManualClock()
    buffer = RecoveringJitterBuffer(capacity=512, is_video=True)
    buffer.clock = clock
    out, plis = feed(buffer, clock, set())
    assert out == list(range(39)) and plis == 0  # the last frame waits for a following one, as in aiortc
