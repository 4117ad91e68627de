"""The WebRTC audio track's jitter buffer: plays only after its pre-roll, in order, silence when dry (then a
new pre-roll), bounded (a stalled consumer drops the oldest audio), cleared at once."""

from __future__ import annotations

import numpy as np
from livepuppet.streaming.server.audio_playout import AudioPlayout


def ramp(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32) / 1e5


def test_preroll_order_and_underrun() -> None:
    playout = AudioPlayout(1000, preroll_s=0.03)  # 30 samples of pre-roll
    playout.push(ramp(0, 20))
    assert not playout.pull(10).any()  # below the pre-roll: silence, nothing consumed
    assert playout.queued_s == 0.02
    playout.push(ramp(20, 33))  # slices of another size than the packets
    got = np.concatenate([playout.pull(10) for _ in range(5)])
    assert np.array_equal(got, ramp(0, 50))  # in order, re-chunked
    dry = playout.pull(10)  # 3 left: they play, then silence, and the buffer waits for a new pre-roll
    assert np.array_equal(dry[:3], ramp(50, 3)) and not dry[3:].any() and playout.underruns == 1
    playout.push(ramp(53, 10))
    assert not playout.pull(5).any()  # below the pre-roll again


def test_bounded_and_cleared() -> None:
    playout = AudioPlayout(1000, preroll_s=0.0, max_s=0.1)
    for k in range(30):
        playout.push(ramp(10 * k, 10))
    assert playout.queued_s <= 0.1 and playout.dropped_samples == 200
    assert np.array_equal(playout.pull(10), ramp(200, 10))  # the newest audio was kept
    playout.clear()
    assert playout.queued_s == 0 and not playout.pull(10).any()


def test_skip_drops_the_time_a_stalled_consumer_missed() -> None:
    playout = AudioPlayout(1000, preroll_s=0.0)
    playout.push(ramp(0, 100))
    playout.pull(10)
    playout.skip(30)  # 30 ms passed without a pull
    assert np.array_equal(playout.pull(10), ramp(40, 10)) and playout.dropped_samples == 30

