"""What the front process and an engine worker process say to each other over their pipe (pickled, small:
pixels never travel here, they cross in shared-memory rings)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.mouth_model import MouthFrame
from livepuppet.streaming.protocol import FrameHeader, ServerEvent
from livepuppet.streaming.server.controls import Controls
from livepuppet.streaming.server.metrics import Figures

# -- front → worker ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RingRef:
    """A shared-memory ring the front created, for the worker to attach."""

    name: str
    max_height: int
    max_width: int


@dataclass(frozen=True, slots=True)
class AddPortrait:
    """A prepared portrait, sent once per worker and kept read-only for all its sessions."""

    key: str
    source: PreparedSource


@dataclass(frozen=True, slots=True)
class OpenJob:
    job_id: str
    kind: str  # puppet | echo | talk | frames
    portrait: str
    input: RingRef | None
    output: RingRef | None
    fps: float
    audio_rate: int


@dataclass(frozen=True, slots=True)
class CloseJob:
    job_id: str


@dataclass(frozen=True, slots=True)
class Control:
    job_id: str
    controls: Controls


@dataclass(frozen=True, slots=True)
class InputFrame:
    """A new frame is in the job's input ring."""

    job_id: str


@dataclass(frozen=True, slots=True)
class PushAudio:
    """Speech for a talking head (``pcm`` i16 mono); answered by :class:`Reply` with the mouth frames."""

    job_id: str
    request: int
    pcm: np.ndarray
    sample_rate: int


@dataclass(frozen=True, slots=True)
class PushAudioBatch:
    """Chunks of one talking head that the front held while an earlier one was unanswered, in one message
    (one write, one wake-up of the worker): each is taken in and answered as if it came alone."""

    job_id: str
    chunks: tuple[PushAudio, ...]


@dataclass(frozen=True, slots=True)
class EndSegment:
    job_id: str
    request: int


@dataclass(frozen=True, slots=True)
class Interrupt:
    job_id: str
    request: int


@dataclass(frozen=True, slots=True)
class SetEmotion:
    job_id: str
    emotion: str
    intensity: float


@dataclass(frozen=True, slots=True)
class SetMaxLag:
    """Frames mode: how late a frame may be before a newer one replaces it (0: every frame)."""

    job_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Tick:
    """Plan the talk frame due now; ``queued_s`` is what the front's audio track still has buffered."""

    job_id: str
    queued_s: float


@dataclass(frozen=True, slots=True)
class FrameSent:
    """A frames-mode JPEG has left the socket (backpressure)."""

    job_id: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


Command = (AddPortrait | OpenJob | CloseJob | Control | InputFrame | PushAudio | PushAudioBatch | EndSegment | Interrupt
           | SetEmotion | SetMaxLag | Tick | FrameSent | Shutdown)

# -- worker → front ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerReady:
    pid: int


@dataclass(frozen=True, slots=True)
class JobOpened:
    job_id: str
    error: str = ""  # empty: opened


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer to a request: the new mouth frames, or the error (``code`` as in the wire protocol)."""

    job_id: str
    request: int
    frames: tuple[MouthFrame, ...] = ()
    error: str = ""
    code: str = ""


@dataclass(frozen=True, slots=True)
class Replies:
    """The answers a speech step produced, in one message (one write, one wake-up of the front)."""

    replies: tuple[Reply, ...]


@dataclass(frozen=True, slots=True)
class FrameReady:
    """A new frame is in the job's output ring."""

    job_id: str


@dataclass(frozen=True, slots=True)
class TalkAudio:
    """The audio slice (or silence) of the talk frame just planned, for the front's audio track."""

    job_id: str
    pcm: np.ndarray


@dataclass(frozen=True, slots=True)
class JpegFrame:
    job_id: str
    header: FrameHeader
    jpeg: bytes


@dataclass(frozen=True, slots=True)
class JobEvent:
    job_id: str
    event: ServerEvent


@dataclass(frozen=True, slots=True)
class JobStatsSnapshot:
    """A job's figures, as the front's session info needs them."""

    frames_out: int
    frames_skipped: int
    errors: int
    face_found: bool
    last_error: str
    speech_start_ms: float
    interrupt_ms: float
    engine_ms: tuple[float, ...]
    out_times_ns: tuple[int, ...]
    cost_ms: float  # engine cost per frame, speech analysis included (process CPU time in a worker)
    failed: bool


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """Every half second: per-job figures and how busy the engine threads were (0..threads)."""

    busy: float
    jobs: dict[str, JobStatsSnapshot] = field(default_factory=dict)
    figures: Figures = Figures()  # what the jobs measured since the last stats


Event = WorkerReady | JobOpened | Reply | Replies | FrameReady | TalkAudio | JpegFrame | JobEvent | WorkerStats
