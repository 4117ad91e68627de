"""The audio WebSocket's wire protocol as typed records, shared by the server and the Python client.
``docs/protocol.md`` is the reference; this module is its one implementation.

Client → server: :class:`Start`, :class:`End`, :class:`Interrupt`, :class:`SetEmotion` (JSON text) and PCM16
audio (binary). Server → client: the events below (JSON text) and, in frames mode, binary frames with a
:class:`FrameHeader`. Parsing is strict and every mistake is a :class:`ProtocolError` with the code the
error event carries.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from livepuppet.engine.config import EMOTIONS
from livepuppet.errors import InputError

SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_MESSAGE_BYTES = 1 << 20  # one message: ≈ 10 s of 48 kHz PCM16; larger closes the socket (1009)
MAX_JSON_DEPTH = 8  # control messages are flat objects; deeper nesting is refused before it costs anything
FRAME_MAGIC = b"LPF1"
_FRAME = struct.Struct("<4sIIQ")  # magic, seq, epoch, frame time in µs; the JPEG follows
CLOSE_BUSY, CLOSE_REFUSED, CLOSE_ENDED = 4503, 4400, 4000


class ProtocolError(InputError):
    """A message broke the protocol; ``code`` goes into the error event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- client → server ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Declares the audio that follows: PCM16 little-endian mono at ``sample_rate``. ``frames`` (frames mode):
    ``"live"`` skips frames that fell behind the voice of a listener at real time, ``"all"`` renders every
    frame however late (offline rendering over the socket)."""

    sample_rate: int
    format: str = "pcm16"
    frames: str = "live"
    type: ClassVar[str] = "start"


@dataclass(frozen=True, slots=True)
class End:
    """The utterance is over: flush the model's look-ahead and render the last frames."""

    type: ClassVar[str] = "end"


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Barge-in: drop queued speech, back to idle at once; speech time restarts at 0."""

    type: ClassVar[str] = "interrupt"


@dataclass(frozen=True, slots=True)
class SetEmotion:
    """Blend towards an emotion (neutral, happy, sad, surprised, angry) at ``intensity`` in [0, 1]; None
    keeps the configured intensity."""

    emotion: str = "neutral"
    intensity: float | None = None
    type: ClassVar[str] = "set"


ClientMessage = Start | End | Interrupt | SetEmotion


def _depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def load_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON with bounded nesting (a deep document is refused before the parser recurses into it)."""
    try:
        decoded = text.decode("utf-8") if isinstance(text, bytes) else text
    except UnicodeDecodeError as exc:
        raise ProtocolError("bad_json", f"JSON must be UTF-8 text: {exc}") from exc
    if _depth(decoded) > max_depth:
        raise ProtocolError("bad_json", f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(decoded)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"control messages must be JSON: {exc}") from exc


FRAME_PACES = ("live", "all")


def parse_client_message(text: str) -> ClientMessage:
    """A client's JSON control message → its record; anything wrong → :class:`ProtocolError`."""
    message = load_json(text)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("bad_message", 'control messages are objects with a "type"')
    kind = message["type"]
    if kind == "start":
        rate = message.get("sample_rate")
        if isinstance(rate, bool) or rate not in SAMPLE_RATES:
            raise ProtocolError("bad_sample_rate", f"sample_rate must be one of {list(SAMPLE_RATES)}, not {rate!r}")
        if message.get("format", "pcm16") != "pcm16":
            raise ProtocolError("bad_format", 'only "pcm16" (16-bit little-endian mono) audio is supported')
        frames = message.get("frames", "live")
        if frames not in FRAME_PACES:
            raise ProtocolError("bad_frames", 'frames must be "live" (skip frames behind the voice) or "all" '
                                '(every frame, however late)')
        return Start(sample_rate=int(rate), frames=frames)
    if kind == "end":
        return End()
    if kind == "interrupt":
        return Interrupt()
    if kind == "set":
        emotion = message.get("emotion", "neutral")
        intensity = message.get("intensity")
        if emotion not in EMOTIONS:
            raise ProtocolError("bad_emotion", f"emotion must be one of {', '.join(EMOTIONS)}")
        if intensity is not None and (isinstance(intensity, bool) or not isinstance(intensity, (int, float))
                                      or not 0 <= intensity <= 1):
            raise ProtocolError("bad_intensity", "intensity must be a number in [0, 1]")
        return SetEmotion(emotion=emotion, intensity=None if intensity is None else float(intensity))
    raise ProtocolError("unknown_type", f"unknown message type {kind!r}; use start, end, interrupt or set")


def encode_client_message(message: ClientMessage) -> str:
    return json.dumps({"type": message.type, **asdict(message)})


def pcm16_audio(data: bytes) -> bytes:
    """Check a binary audio message: 16-bit samples, so an even number of bytes."""
    if len(data) % 2:
        raise ProtocolError("bad_audio", "audio must be 16-bit little-endian PCM: an even number of bytes")
    return data


# -- server → client ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ready:
    """On connect: where the video goes, at what rate, and what audio is accepted."""

    output: str  # "webrtc" | "frames"
    fps: float
    session: str
    lookahead_ms: int
    sample_rates: tuple[int, ...] = SAMPLE_RATES
    type: ClassVar[str] = "ready"


@dataclass(frozen=True, slots=True)
class Started:
    sample_rate: int
    type: ClassVar[str] = "started"


@dataclass(frozen=True, slots=True)
class MouthShape:
    """The mouth for one 10 ms hop: ``t`` in seconds of speech time, the viseme's name, the controls."""

    t: float
    viseme: str
    jaw: float
    close: float
    width: float
    round: float


@dataclass(frozen=True, slots=True)
class Mouth:
    frames: tuple[MouthShape, ...]
    type: ClassVar[str] = "mouth"


@dataclass(frozen=True, slots=True)
class Speaking:
    """Playback of speech started (``state``) or stopped, at speech/stream time ``t``."""

    state: bool
    t: float
    type: ClassVar[str] = "speaking"


@dataclass(frozen=True, slots=True)
class Interrupted:
    type: ClassVar[str] = "interrupted"


@dataclass(frozen=True, slots=True)
class Error:
    code: str
    message: str
    type: ClassVar[str] = "error"


@dataclass(frozen=True, slots=True)
class Ended:
    """The session this socket feeds has ended (``reason``: closed, idle, failed, shutdown); the socket
    closes after this event."""

    reason: str
    type: ClassVar[str] = "ended"


ServerEvent = Ready | Started | Mouth | Speaking | Interrupted | Error | Ended
_EVENTS: dict[str, type] = {cls.type: cls for cls in (Ready, Started, Mouth, Speaking, Interrupted, Error, Ended)}


def encode_event(event: ServerEvent) -> str:
    return json.dumps({"type": event.type, **asdict(event)})


def parse_event(text: str) -> ServerEvent:
    """A server event (client side); unknown types are a :class:`ProtocolError`."""
    data = load_json(text, max_depth=4)
    if not isinstance(data, dict) or data.get("type") not in _EVENTS:
        raise ProtocolError("bad_message", f"not a livepuppet event: {text[:80]!r}")
    cls = _EVENTS[data.pop("type")]
    if cls is Mouth:
        return Mouth(frames=tuple(MouthShape(**f) for f in data["frames"]))
    if cls is Ready:
        data["sample_rates"] = tuple(data.get("sample_rates", SAMPLE_RATES))
    return cls(**data)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The header of a frames-mode binary message; the JPEG follows it. ``t`` is the frame's start on the
    speech timeline (s); ``epoch`` counts interrupts (frames of an old epoch may be dropped)."""

    seq: int
    epoch: int
    t: float
    SIZE: ClassVar[int] = _FRAME.size

    def pack(self, jpeg: bytes) -> bytes:
        return _FRAME.pack(FRAME_MAGIC, self.seq, self.epoch, int(round(self.t * 1e6))) + jpeg

    @classmethod
    def unpack(cls, data: bytes) -> tuple[FrameHeader, bytes]:
        if len(data) < _FRAME.size:
            raise ProtocolError("bad_message", "frame message shorter than its header")
        magic, seq, epoch, t_us = _FRAME.unpack_from(data)
        if magic != FRAME_MAGIC:
            raise ProtocolError("bad_message", "not a livepuppet frame message")
        return cls(seq=seq, epoch=epoch, t=t_us / 1e6), data[_FRAME.size:]
