"""Where a real-time listener can be on the speech timeline: the earliest moment each speech instant can be
heard, from when its audio arrived. Audio cannot play before it arrives, nor faster than real time, so the
mapping is anchored at the newest audio that arrived later than the current mapping says it could play (a
source streaming at real time re-anchors with every chunk; a TTS faster than real time, only at its first).

Frames mode uses it to skip frames that would only show the past: past capacity each session then gets
fewer frames, each close to its voice, instead of every frame ever later.
"""

from __future__ import annotations


class LiveEdge:
    """The speech-time → wall-time mapping of the earliest possible playback (monotonic ns, seconds)."""

    def __init__(self) -> None:
        self._anchor: tuple[int, float] | None = None  # (wall ns, speech s) of the anchoring audio's start

    def arrived(self, speech_s: float, now_ns: int) -> None:
        """Audio from ``speech_s`` on arrived at ``now_ns``: its start can be heard then at the earliest (a
        long chunk at once, e.g. a whole TTS sentence, plays at real time from there)."""
        if self._anchor is None or self.plays_at_ns(speech_s) < now_ns:
            self._anchor = (now_ns, speech_s)

    def plays_at_ns(self, speech_s: float) -> int:
        """The earliest wall time ``speech_s`` can be heard (0 before any audio)."""
        if self._anchor is None:
            return 0
        wall, speech = self._anchor
        return wall + round((speech_s - speech) * 1e9)

    def lag_s(self, speech_s: float, now_ns: int) -> float:
        """How long ago ``speech_s`` could have been heard (negative: it is still ahead); 0 before any audio."""
        if self._anchor is None:
            return 0.0
        return (now_ns - self.plays_at_ns(speech_s)) / 1e9

    def reset(self) -> None:
        """Speech time restarted (an interrupt): forget the mapping."""
        self._anchor = None
