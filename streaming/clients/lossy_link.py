"""Network faults inside the process (the kernel here has no netem): a peer connection's ICE transport is
wrapped so that what it sends and receives is lost in bursts (a seeded Gilbert-Elliott model), delayed,
reordered by jitter, or blacked out entirely for a while.

aiortc's DTLS transport sends and receives every DTLS, SRTP and SRTCP packet through its ICE transport's
``_send``/``_recv`` (the aioice connection's methods, looked up at each call), so replacing those two
attributes impairs all media and RTCP, while aioice's own STUN checks (consent) pass untouched, as on a real
lossy path where the pair stays nominated. Counters say what was dropped, and how many RTCP picture-loss
indications (PLI: keyframe requests) crossed the link each way.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection

RTCP_PSFB = 206
PLI_FMT = 1


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """One direction's impairment: mean ``loss`` rate in bursts of ``burst`` packets on average, a fixed
    ``delay_s`` plus uniform ``jitter_s`` (packets closer together than the jitter get reordered)."""

    loss: float = 0.0
    burst: float = 3.0
    delay_s: float = 0.0
    jitter_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0 or self.burst < 1.0 or self.delay_s < 0 or self.jitter_s < 0:
            raise ValueError(f"bad link faults {self}")


class GilbertElliott:
    """Bursty loss: a good state that loses nothing and a bad state that loses everything; the mean time in
    the bad state is ``burst`` packets and the long-run loss rate is ``loss``."""

    def __init__(self, loss: float, burst: float, rng: random.Random) -> None:
        self._rng = rng
        self._to_good = 1.0 / burst
        self._to_bad = loss * self._to_good / (1.0 - loss) if loss > 0 else 0.0
        self._bad = False

    def drop(self) -> bool:
        if self._bad:
            self._bad = self._rng.random() >= self._to_good
        else:
            self._bad = self._rng.random() < self._to_bad
        return self._bad


@dataclass
class LinkCounters:
    sent: int = 0
    dropped_out: int = 0
    received: int = 0
    dropped_in: int = 0
    pli_out: int = 0  # keyframe requests this side sent
    pli_in: int = 0  # keyframe requests this side received


def is_pli(packet: bytes) -> bool:
    """An SRTCP compound packet that starts with a picture-loss indication (the RTCP header is not
    encrypted in SRTCP, and aiortc sends each PLI on its own)."""
    return len(packet) >= 8 and packet[1] == RTCP_PSFB and packet[0] & 0x1F == PLI_FMT


class LossyLink:
    """Impairs one ICE transport: ``out`` faults on what it sends, ``into`` on what it receives."""

    def __init__(self, ice: Any, out: LinkFaults, into: LinkFaults, seed: int) -> None:
        self._ice = ice
        self._send: Callable[[bytes], Awaitable[None]] = ice._send
        self._recv: Callable[[], Awaitable[bytes]] = ice._recv
        self._rng = random.Random(seed)
        self.counters = LinkCounters()
        self._loop = asyncio.get_running_loop()
        self._blackout_until = 0.0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._inbox: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self.set_faults(out, into)
        ice._send = self._lossy_send
        ice._recv = self._lossy_recv

    def set_faults(self, out: LinkFaults, into: LinkFaults) -> None:
        self._out, self._into = out, into
        self._out_model = GilbertElliott(out.loss, out.burst, self._rng)
        self._in_model = GilbertElliott(into.loss, into.burst, self._rng)

    def blackout(self, seconds: float) -> None:
        """Lose every packet, both ways, for the next ``seconds``."""
        self._blackout_until = self._loop.time() + seconds

    @property
    def blacked_out(self) -> bool:
        return self._loop.time() < self._blackout_until

    def _delay(self, faults: LinkFaults) -> float:
        return faults.delay_s + (self._rng.uniform(0.0, faults.jitter_s) if faults.jitter_s else 0.0)

    async def _lossy_send(self, data: bytes) -> None:
        self.counters.sent += 1
        if self.blacked_out or self._out_model.drop():
            self.counters.dropped_out += 1
            return
        self.counters.pli_out += is_pli(data)
        delay = self._delay(self._out)
        if delay <= 0:
            await self._send(data)
            return
        handle = self._loop.call_later(delay, self._spawn, self._send_quietly(data))
        del handle

    async def _send_quietly(self, data: bytes) -> None:
        try:
            await self._send(data)
        except ConnectionError:
            pass  # the connection closed while the packet was "in flight"

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lossy_recv(self) -> bytes:
        if self._pump is None:
            self._pump = self._loop.create_task(self._pump_in(), name="lossy-link-recv")
        item = await self._inbox.get()
        if isinstance(item, BaseException):
            self._inbox.put_nowait(item)  # every later recv() fails the same way
            raise item
        return item

    async def _pump_in(self) -> None:
        while True:
            try:
                data = await self._recv()
            except Exception as exc:  # the connection closed: hand the error to the reader
                self._inbox.put_nowait(exc)
                return
            self.counters.received += 1
            if self.blacked_out or self._in_model.drop():
                self.counters.dropped_in += 1
                continue
            self.counters.pli_in += is_pli(data)
            delay = self._delay(self._into)
            if delay <= 0:
                self._inbox.put_nowait(data)
            else:
                self._loop.call_later(delay, self._inbox.put_nowait, data)

    async def aclose(self) -> None:
        """Stop the receive pump and in-flight sends, and give the transport its own methods back."""
        self._ice._send, self._ice._recv = self._send, self._recv
        pending = [t for t in (self._pump, *self._tasks) if t is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def impair(pc: RTCPeerConnection, out: LinkFaults = LinkFaults(), into: LinkFaults = LinkFaults(),
           seed: int = 0) -> LossyLink:
    """Wrap the (bundled) ICE transport of a connected ``pc``."""
    transports = {id(t.sender.transport.transport): t.sender.transport.transport for t in pc.getTransceivers()
                  if t.sender.transport is not None}
    if len(transports) != 1:
        raise ValueError(f"expected one bundled ICE transport, found {len(transports)}")
    return LossyLink(next(iter(transports.values())), out, into, seed)
