"""Presentation-time resampling: timestamped items (variable rate, gaps, duplicates) → a constant rate.

Output instant ``k`` is ``k / fps`` seconds; it shows the latest item whose ``pts`` is at or before that
instant (the first item before it appears), which is what a player would be showing at that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
EPS_NS = 1_000_000  # 1 ms: timestamps rounded by a container still count as "at" the instant


def at_constant_rate(items: Iterable[T], pts_ns: Callable[[T], int], fps: float,
                     end_ns: int | None = None) -> Iterator[tuple[int, T]]:
    """``(k, item)`` for every output instant ``k / fps`` from 0 until the stream ends: the last item's pts
    plus one output frame (or its own gap to the one before, if longer: a long last frame is kept), or
    ``end_ns`` (the container's length) if later: frames a decoder lost at the end are held, not cut."""
    period_ns = 1e9 / fps
    k = 0
    current: T | None = None
    last_pts = prev_pts = 0
    for item in items:
        pts = pts_ns(item)
        if current is not None and pts <= last_pts:
            pts = last_pts  # out-of-order or duplicate stamps: keep order, never go back in time
        while current is not None and k * period_ns + EPS_NS < pts:
            yield k, current
            k += 1
        current, prev_pts, last_pts = item, last_pts, pts
    if current is None:
        return
    tail = max(period_ns, float(last_pts - prev_pts)) if k > 0 else period_ns
    end = max(float(end_ns or 0), last_pts + tail)
    while k * period_ns + EPS_NS < end or k == 0:
        yield k, current
        k += 1
