"""The live edge: when a real-time listener can hear each speech instant, from when its audio arrived."""

from __future__ import annotations

import pytest
from livepuppet.engine.speech.live_edge import LiveEdge

MS = 1_000_000


def test_real_time_chunks_keep_the_edge_at_each_arrival() -> None:
    edge = LiveEdge()
    for k in range(50):  # 20 ms chunks arriving every 20 ms, plus 3 ms of network jitter on odd ones
        edge.arrived(k * 0.02, 1000 * MS + k * 20 * MS + (3 * MS if k % 2 else 0))
    # The last chunk (k = 49) arrived 3 ms late, so the edge moved with it.
    assert edge.plays_at_ns(0.98) == 1000 * MS + 980 * MS + 3 * MS
    assert edge.lag_s(0.98, 1000 * MS + 1283 * MS) == pytest.approx(0.3)


def test_audio_faster_than_real_time_is_anchored_at_its_first_arrival() -> None:
    edge = LiveEdge()
    for k in range(100):  # 2 s of TTS in 0.1 s
        edge.arrived(k * 0.02, k * MS)
    assert edge.plays_at_ns(1.5) == 1500 * MS  # real time from the first chunk on
    assert edge.lag_s(1.5, 200 * MS) == pytest.approx(-1.3)  # still ahead of the listener


def test_one_long_chunk_plays_from_its_arrival() -> None:
    edge = LiveEdge()
    edge.arrived(0.0, 5000 * MS)  # a whole sentence at once
    assert edge.lag_s(2.0, 5100 * MS) == pytest.approx(-1.9)


def test_a_pause_moves_the_edge_and_reset_forgets_it() -> None:
    edge = LiveEdge()
    assert edge.lag_s(3.0, 10**12) == 0.0  # no audio yet: nothing is late
    edge.arrived(0.0, 0)
    edge.arrived(1.0, 1000 * MS)
    edge.arrived(2.0, 9000 * MS)  # the next utterance, after 7 s of silence
    assert edge.plays_at_ns(2.5) == 9500 * MS
    edge.reset()
    assert edge.plays_at_ns(2.5) == 0 and edge.lag_s(2.5, 10**12) == 0.0
