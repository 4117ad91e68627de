"""The talking-head generator: speech audio in; video frames, the same audio and segment ends out, every item
stamped on one timeline. Every audio-driven output is a thin consumer of it: WebRTC talk sessions, the
WebSocket frames mode, ``livepuppet speak``, and the Pipecat and LiveKit Agents adapters.

Its shape is LiveKit Agents' ``VideoGenerator``: :meth:`push_audio` takes audio chunks or
:data:`SEGMENT_END`, :meth:`clear_buffer` is the one interrupt, and output is pulled a step at a time with
:meth:`next_step` (synchronous: it renders; the asyncio iterator that paces it lives at the edge,
``streaming/talk_stream.py``).

Timeline: output frame ``k`` covers ``[t, t + 1/fps)``; a speech frame carries the audio slice of the same
interval and shows the mouth at its middle, so sound and picture that leave together are in sync. Speech
frames advance the speech cursor by one slice; idle frames (blinks, sway, breathing) do not. A segment
(an utterance) starts playing once ``preroll_s`` of it is buffered or it has ended, and its
:class:`TalkSegmentEnd` follows its last audio slice.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
from livepuppet.engine.clock import Clock, MonotonicClock
from livepuppet.engine.config import EMOTIONS, EngineConfig
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.speech.live_edge import LiveEdge
from livepuppet.engine.speech.mouth_model import SAMPLE_RATE, AudioMouthModel, MouthFrame
from livepuppet.engine.speech.resampler import StreamingResampler
from livepuppet.engine.speech.sample_queue import SampleQueue
from livepuppet.engine.speech.talking_head import TalkingHead
from livepuppet.errors import InputError

MIN_RATE, MAX_RATE = 8000, 192_000


class BufferFull(InputError):
    """More audio was pushed ahead of playback than allowed (``speech.max_buffer_s``)."""


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Speech audio in: ``pcm (n,)`` mono, f32 in [-1, 1] or i16, at ``sample_rate`` Hz (any rate 8–192 kHz).
    ``arrived_ns`` is when it reached the server (on the generator's clock; None: when it is pushed)."""

    pcm: np.ndarray
    sample_rate: int
    arrived_ns: int | None = None


@dataclass(frozen=True, slots=True)
class EndOfSegment:
    """The speaker finished an utterance: render what is buffered, then emit a :class:`TalkSegmentEnd`."""


SEGMENT_END = EndOfSegment()


@dataclass(frozen=True, slots=True)
class TalkVideoFrame:
    """One output picture: ``pixels (S, S, 3) u8 RGB`` (the face crop) and ``full`` (the whole portrait,
    when asked for). ``t`` is the frame's start on the output timeline (s), ``speech_t`` the speech instant
    its mouth shows (None while idle); ``epoch`` counts interrupts."""

    pixels: np.ndarray
    full: np.ndarray | None
    t: float
    seq: int
    epoch: int
    speech_t: float | None

    @property
    def pts(self) -> int:
        """``t`` in integer nanoseconds."""
        return int(round(self.t * 1e9))


@dataclass(frozen=True, slots=True)
class TalkAudioFrame:
    """The speech heard during the video frame stamped ``t``: ``pcm (n,) f32 [-1, 1]`` at ``sample_rate``."""

    pcm: np.ndarray
    sample_rate: int
    t: float
    epoch: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate


@dataclass(frozen=True, slots=True)
class TalkSegmentEnd:
    """A segment finished playing at ``t`` (``interrupted``: cut short by :meth:`clear_buffer`) after
    ``played_s`` seconds of its audio."""

    t: float
    epoch: int
    interrupted: bool
    played_s: float


TalkItem = TalkVideoFrame | TalkAudioFrame | TalkSegmentEnd


@dataclass(frozen=True, slots=True)
class TalkStep:
    """What one step produced, in emission order: ends before the frame (an interrupt), the frame, its
    audio, and the end of the segment whose last slice it carried."""

    before: tuple[TalkSegmentEnd, ...]
    video: TalkVideoFrame
    audio: TalkAudioFrame | None
    after: TalkSegmentEnd | None

    @property
    def speaking(self) -> bool:
        return self.audio is not None

    def items(self) -> list[TalkItem]:
        out: list[TalkItem] = [*self.before, self.video]
        if self.audio is not None:
            out.append(self.audio)
        if self.after is not None:
            out.append(self.after)
        return out


@dataclass(frozen=True, slots=True)
class TalkPlan:
    """A frame decided but not yet rendered (see :meth:`TalkingHeadGenerator.advance`): its audio is final,
    so a consumer may send it at once and render the picture on another thread."""

    before: tuple[TalkSegmentEnd, ...]
    t: float
    seq: int
    epoch: int
    speech_t: float | None
    audio: TalkAudioFrame | None
    after: TalkSegmentEnd | None
    speech_arrived_ns: int | None  # set on the frame that first shows a segment: when its audio arrived
    cleared_ns: int | None  # set on the first idle frame after clear_buffer: when it was called


@dataclass(slots=True)
class _Segment:
    """One utterance's output audio, queued at the output rate, and how far it has played."""

    speech_start: float  # speech time (TalkingHead timeline) of its first sample
    arrived_ns: int
    audio: SampleQueue = field(default_factory=SampleQueue)
    pushed: int = 0
    played: int = 0
    slices: int = 0
    ended: bool = False
    playing: bool = False

    @property
    def queued(self) -> int:
        """Samples not yet played."""
        return self.audio.queued


@dataclass(frozen=True, slots=True)
class _ShownSlice:
    """An audio slice handed out: output times [t0, t1) carry speech from s0 on."""

    t0: float
    t1: float
    s0: float
    segment: _Segment
    arrived_ns: int | None


@dataclass(slots=True)
class GeneratorStats:
    """Figures a session reports (written by the rendering thread)."""

    frames: int = 0
    speech_frames: int = 0
    underruns: int = 0  # frames held because a playing segment's audio had not arrived yet
    speech_start_ms: float = 0.0  # audio of a segment arrived → the frame that starts showing it rendered
    interrupt_ms: float = 0.0  # clear_buffer → the first idle frame rendered
    render_ms_total: float = 0.0  # engine time spent rendering (÷ frames: the cost of a frame; load reports)


class TalkingHeadGenerator:
    """One talking portrait as a stream. Thread-safe: :meth:`push_audio` and :meth:`clear_buffer` may be
    called from one thread while :meth:`next_step` renders on another."""

    def __init__(self, source: PreparedSource, config: EngineConfig, model: AudioMouthModel, *,
                 fps: float | None = None, audio_rate: int = 48_000, full_frames: bool = False,
                 clock: Clock | None = None) -> None:
        self.fps = float(fps or config.speech.fps)
        if not 1.0 <= self.fps <= 120.0:
            raise InputError(f"fps must be in [1, 120], not {self.fps}")
        if not MIN_RATE <= audio_rate <= MAX_RATE:
            raise InputError(f"audio_rate must be in [{MIN_RATE}, {MAX_RATE}] Hz, not {audio_rate}")
        self.audio_rate = audio_rate
        self.head = TalkingHead(source, config, model, clock)
        self.lookahead_s = self.head.lookahead_s
        self._clock = clock or MonotonicClock()
        self._full = full_frames
        self._preroll = int(config.speech.preroll_s * audio_rate)
        self._capacity = int(config.speech.max_buffer_s * audio_rate)
        self._ingest = threading.Lock()  # push / end / clear: the model stream is not re-entrant
        self._lock = threading.Lock()  # segment queue and counters
        self._segments: deque[_Segment] = deque()
        self._pending_ends: list[TalkSegmentEnd] = []
        self._rate_in = 0
        self._to_model: StreamingResampler | None = None
        self._to_out: StreamingResampler | None = None
        self._index = 0  # output frames so far (the output timeline)
        self._epoch = 0
        self._shown: deque[_ShownSlice] = deque()  # slices handed out, for the speech instant each frame shows
        self._cleared_ns: int | None = None
        self._live = LiveEdge()  # when a real-time listener can hear each speech instant (frames mode)
        self.stats = GeneratorStats()

    # -- input --------------------------------------------------------------------------------------------

    def push_audio(self, item: AudioChunk | EndOfSegment) -> list[MouthFrame]:
        """Queue speech (runs the audio model on it) or end the current segment. Returns the new mouth
        frames (speech-time stamped), for clients that show visemes. Raises :class:`BufferFull` when more
        than ``speech.max_buffer_s`` would be queued ahead of playback, :class:`InputError` on bad audio."""
        if isinstance(item, EndOfSegment):
            return self.end_segment()
        pcm = _as_float(item.pcm)
        rate = int(item.sample_rate)
        if not MIN_RATE <= rate <= MAX_RATE:
            raise InputError(f"sample rate must be in [{MIN_RATE}, {MAX_RATE}] Hz, not {rate}")
        with self._ingest:
            with self._lock:  # refused before any state changes, so a refused chunk leaves no trace
                if self.queued_samples + -(-len(pcm) * self.audio_rate // rate) > self._capacity:
                    raise BufferFull(f"more than {self._capacity / self.audio_rate:.0f} s of audio queued ahead "
                                     "of playback; wait for playback before sending more")
            if rate != self._rate_in:  # a new rate (or the first chunk): new resamplers
                self._rate_in = rate
                self._to_model = StreamingResampler(rate, SAMPLE_RATE)
                self._to_out = StreamingResampler(rate, self.audio_rate)
            assert self._to_model is not None and self._to_out is not None
            out = self._to_out.push(pcm)
            with self._lock:
                segment = self._open_segment()
            starts_s = self.head.received_s
            frames = self.head.push(self._to_model.push(pcm))
            arrived = self._clock.now_ns() if item.arrived_ns is None else item.arrived_ns
            with self._lock:
                segment.audio.push(out)
                segment.pushed += len(out)
                self._live.arrived(starts_s, arrived)
        return frames

    def end_segment(self) -> list[MouthFrame]:
        """:data:`SEGMENT_END`: flush the model's look-ahead; the segment plays out even if shorter than the
        pre-roll, and its end is emitted after its last slice (at once if it had no audio)."""
        with self._ingest:
            frames = self.head.end_utterance()
            with self._lock:
                self._open_segment().ended = True
        return frames

    def clear_buffer(self) -> None:
        """Interrupt (barge-in): drop all queued speech at once; the next frame is idle, preceded by an
        interrupted :class:`TalkSegmentEnd` if anything was playing or queued. Speech time restarts at 0."""
        with self._ingest:
            with self._lock:
                current = next((s for s in self._segments if s.pushed or s.playing or s.ended), None)
                if current is not None:
                    self._pending_ends.append(TalkSegmentEnd(t=self._index / self.fps, epoch=self._epoch,
                                                             interrupted=True,
                                                             played_s=current.played / self.audio_rate))
                self._segments.clear()
                self._epoch += 1
                self._shown.clear()
                self._cleared_ns = self._clock.now_ns()
                self._live.reset()
            self.head.interrupt()
            for resampler in (self._to_model, self._to_out):
                if resampler is not None:
                    resampler.reset()

    def set_emotion(self, name: str, intensity: float) -> None:
        """Ease towards ``name`` (neutral, happy, sad, surprised, angry) at ``intensity`` in [0, 1]."""
        self.head.set_emotion(*check_emotion(name, intensity))

    # -- state --------------------------------------------------------------------------------------------

    def now_ns(self) -> int:
        """The generator's clock (arrival stamps of :class:`AudioChunk` are on it)."""
        return self._clock.now_ns()

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def queued_samples(self) -> int:
        """Output-rate samples waiting to play (all segments)."""
        return sum(s.queued for s in self._segments)

    @property
    def queued_s(self) -> float:
        with self._lock:
            return self.queued_samples / self.audio_rate

    @property
    def speaking(self) -> bool:
        """Speech is queued or playing."""
        with self._lock:
            return any(s.queued or s.playing for s in self._segments)

    def idle(self) -> bool:
        """Nothing queued, nothing playing and no end waiting to be emitted."""
        with self._lock:
            return not self._segments and not self._pending_ends

    def ready(self) -> bool:
        """A speech slice (or a segment end) can be produced now without waiting for more audio."""
        with self._lock:
            return bool(self._pending_ends) or self._drained() is not None or self._plan() is not None

    def lag_s(self, plan: TalkPlan) -> float:
        """Frames mode: how long ago a real-time listener could have heard the middle of ``plan``'s slice
        (from when its audio arrived; negative while it is still ahead, as for a TTS faster than real time)."""
        middle = plan.t + (plan.audio.duration_s if plan.audio is not None else 1.0 / self.fps) / 2
        with self._lock:
            return self._live.lag_s(middle, self._clock.now_ns())

    def pop_ends(self) -> list[TalkSegmentEnd]:
        """Segment ends due now without a frame (frames mode: :meth:`next_step` without ``idle`` returned
        None); a real-time consumer gets them with the next frame instead."""
        with self._lock:
            ends = [*self._pending_ends]
            self._pending_ends.clear()
            drained = self._pop_drained()
            return ends if drained is None else [*ends, drained]

    # -- output -------------------------------------------------------------------------------------------

    def next_step(self, idle: bool = True) -> TalkStep | None:
        """Plan and render the next output frame (:meth:`advance` then :meth:`render`). With ``idle`` (a
        real-time consumer) there is always a frame: speech if a slice is ready, else the held mouth (a
        playing segment waiting for audio) or idle life. Without it (frames mode, offline) only speech frames
        come out: None when no slice is ready."""
        plan = self.advance(idle)
        return None if plan is None else self.render(plan)

    def advance(self, idle: bool = True, display_offset_s: float = 0.0) -> TalkPlan | None:
        """Decide the next frame without rendering it (cheap): take its audio slice, if one is ready, and
        choose the speech instant it shows. ``display_offset_s`` (real-time mode only) shifts that instant
        on the output timeline, for a consumer whose audio reaches the ear later (negative) or earlier than
        its video: a frame then shows what is heard while it is on screen."""
        with self._lock:
            before = tuple(self._pending_ends)
            self._pending_ends.clear()
            drained = self._pop_drained()
            if drained is not None:
                before = (*before, drained)
            plan = self._plan()
            if plan is None and not idle:
                if before:  # ends alone still have to reach the consumer (pop_ends)
                    self._pending_ends.extend(before)
                return None
            index, epoch = self._index, self._epoch
            t = index / self.fps
            audio: TalkAudioFrame | None = None
            after: TalkSegmentEnd | None = None
            arrived: int | None = None
            if plan is not None:
                segment, take = plan
                s0 = segment.speech_start + segment.played / self.audio_rate
                if not idle:
                    t = s0
                pcm = self._take(segment, take)
                audio = TalkAudioFrame(pcm=pcm, sample_rate=self.audio_rate, t=t, epoch=epoch)
                self._shown.append(_ShownSlice(t, t + take / self.audio_rate, s0, segment,
                                               segment.arrived_ns if segment.slices == 1 else None))
                if segment.ended and not segment.queued:
                    self._segments.popleft()
                    after = TalkSegmentEnd(t=t + take / self.audio_rate, epoch=epoch, interrupted=False,
                                           played_s=segment.played / self.audio_rate)
            if idle:
                shown, arrived = self._speech_at(t + 0.5 / self.fps + display_offset_s)
            else:  # frames mode: the middle of the frame's own slice
                assert audio is not None
                shown, arrived = self._speech_at(t + audio.duration_s / 2)
            self._index += 1
            cleared = None
            if shown is None and self._cleared_ns is not None:
                cleared, self._cleared_ns = self._cleared_ns, None
        return TalkPlan(before=before, t=t, seq=index, epoch=epoch, speech_t=shown, audio=audio, after=after,
                        speech_arrived_ns=arrived, cleared_ns=cleared)

    def render(self, plan: TalkPlan) -> TalkStep:
        """Render a planned frame (the expensive part; any thread, one at a time)."""
        started = self._clock.now_ns()
        out = self.head.render(plan.speech_t, plan.t, plan.seq, full=self._full)
        done = self._clock.now_ns()
        self.stats.render_ms_total += (done - started) / 1e6
        self.stats.frames += 1
        if plan.speech_t is not None:
            self.stats.speech_frames += 1
        if plan.speech_arrived_ns is not None:
            self.stats.speech_start_ms = (done - plan.speech_arrived_ns) / 1e6
        if plan.cleared_ns is not None:
            self.stats.interrupt_ms = (done - plan.cleared_ns) / 1e6
        video = TalkVideoFrame(pixels=out.crop.pixels, full=out.full.pixels if out.full is not None else None,
                               t=plan.t, seq=plan.seq, epoch=plan.epoch, speech_t=plan.speech_t)
        return TalkStep(before=plan.before, video=video, audio=plan.audio, after=plan.after)

    def _speech_at(self, query: float) -> tuple[float | None, int | None]:
        """The speech instant heard at output time ``query`` (from the slices handed out so far) and, for a
        segment's first shown instant, when its audio arrived. Caller holds the lock."""
        while len(self._shown) > 1 and self._shown[1].t0 <= query:
            self._shown.popleft()  # only the newest slice at or before the query can matter again
        if not self._shown or self._shown[0].t0 > query:
            return None, None
        entry = self._shown[0]
        arrived = entry.arrived_ns
        if arrived is not None:
            self._shown[0] = replace(entry, arrived_ns=None)  # reported once
        if query < entry.t1:
            return entry.s0 + (query - entry.t0), arrived
        if entry.segment.playing and entry.segment in self._segments:
            self.stats.underruns += 1  # the segment ran dry: hold the mouth until its audio arrives
            return entry.s0 + (entry.t1 - entry.t0), arrived
        return None, None

    def _open_segment(self) -> _Segment:
        """The segment new audio joins (a new one after an ended one). Caller holds the lock."""
        if not self._segments or self._segments[-1].ended:
            start = self.head.received_s
            self._segments.append(_Segment(speech_start=start, arrived_ns=self._clock.now_ns()))
        return self._segments[-1]

    def _drained(self) -> _Segment | None:
        """The first segment if it has ended and has nothing left to play. Caller holds the lock."""
        if self._segments and self._segments[0].ended and not self._segments[0].queued:
            return self._segments[0]
        return None

    def _pop_drained(self) -> TalkSegmentEnd | None:
        """End a drained segment (no audio at all, or its audio ran out before the end came)."""
        segment = self._drained()
        if segment is None:
            return None
        self._segments.popleft()
        return TalkSegmentEnd(t=self._index / self.fps, epoch=self._epoch, interrupted=False,
                              played_s=segment.played / self.audio_rate)

    def _plan(self) -> tuple[_Segment, int] | None:
        """(segment, samples) of the next speech slice if it is ready. Caller holds the lock."""
        if not self._segments:
            return None
        segment = self._segments[0]
        if not segment.playing:
            if segment.queued < max(1, self._preroll) and not segment.ended:
                return None
            if not segment.queued:
                return None
            segment.playing = True
        j = segment.slices
        want = int(round((j + 1) * self.audio_rate / self.fps)) - int(round(j * self.audio_rate / self.fps))
        if segment.queued < want and not segment.ended:
            return None
        take = min(want, segment.queued)
        if take == 0:
            return None
        # The mouth model must have covered the middle of this slice (it runs lookahead_s behind the audio).
        show = segment.speech_start + (segment.played + take / 2) / self.audio_rate
        if not segment.ended and self.head.timeline.mouth_until < show:
            return None
        return segment, take

    def _take(self, segment: _Segment, n: int) -> np.ndarray:
        out = np.empty(n, np.float32)
        segment.audio.take_into(out)
        segment.played += n
        segment.slices += 1
        return out


def check_emotion(name: str, intensity: float) -> tuple[str, float]:
    """A valid (emotion, intensity) pair, or an :class:`InputError` naming what is wrong."""
    if name not in EMOTIONS:
        raise InputError(f"emotion must be one of {', '.join(EMOTIONS)}, not {name!r}")
    if isinstance(intensity, bool) or not 0.0 <= float(intensity) <= 1.0:
        raise InputError(f"emotion intensity must be a number in [0, 1], not {intensity!r}")
    return name, float(intensity)


def _as_float(pcm: np.ndarray) -> np.ndarray:
    """Mono PCM as f32 in [-1, 1] (i16 is scaled); anything else is a clear error."""
    if not isinstance(pcm, np.ndarray) or pcm.ndim != 1:
        shape = getattr(pcm, "shape", None)
        raise InputError(f"audio must be a mono NumPy array of shape (n,), got {type(pcm).__name__} {shape}")
    if pcm.dtype == np.int16:
        return pcm.astype(np.float32) / 32768.0
    if not np.issubdtype(pcm.dtype, np.floating):
        raise InputError(f"audio must be float32 in [-1, 1] or int16 PCM, not {pcm.dtype}")
    return np.ascontiguousarray(pcm, np.float32)
