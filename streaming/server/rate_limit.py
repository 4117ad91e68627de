"""Per-client token buckets: how often one remote address may open sessions or upload portraits (HTTP 429
with ``Retry-After``, or a ``busy`` error on the WebSocket). Time comes from the injected clock."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from livepuppet.engine.clock import Clock
from livepuppet.errors import LivepuppetError

MAX_CLIENTS = 4096  # buckets kept; the least recently seen client is forgotten first (it starts full again)


class RateLimited(LivepuppetError):
    """One client asked too often (HTTP 429); ``retry_after_s`` says when the next token is there."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_ns: int


class ClientRateLimit:
    """``burst`` requests at once per client, refilled at ``per_minute``; ``per_minute`` 0 = no limit."""

    def __init__(self, what: str, per_minute: float, burst: int, clock: Clock, key: str) -> None:
        self._what = what
        self._rate_per_ns = per_minute / 60e9
        self._burst = float(burst)
        self._clock = clock
        self._key = key  # the config keys, for the error message
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> None:
        """Spend one token of ``client``'s bucket or raise :class:`RateLimited`."""
        if self._rate_per_ns <= 0:
            return
        now = self._clock.now_ns()
        bucket = self._buckets.pop(client, None) or _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated_ns) * self._rate_per_ns)
        bucket.updated_ns = now
        self._buckets[client] = bucket
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1.0:
            wait_s = max(1, math.ceil((1.0 - bucket.tokens) / self._rate_per_ns / 1e9))
            raise RateLimited(f"too many {self._what} from {client}: try again in {wait_s} s ({self._key})",
                              wait_s)
        bucket.tokens -= 1.0
