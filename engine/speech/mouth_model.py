"""Audio → mouth: the shipped causal ONNX model (log-mel → visemes + jaw/lip controls) behind a streaming API.

``AudioMouthModel.load()`` opens the ONNX file once; ``stream()`` gives a cheap per-session ``MouthStream``
that turns pushed 16 kHz PCM into one ``MouthFrame`` per 10 ms hop, ``lookahead_s`` after the audio arrives.
Offline ``infer`` runs the same streaming path, so the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from livepuppet.engine.speech.features import HOP, N_MELS, SILENCE_VALUE, LogMelStream
from livepuppet.engine.speech.features import SAMPLE_RATE as _FEATURE_RATE
from livepuppet.engine.speech.visemes import VISEMES
from livepuppet.errors import InputError

SAMPLE_RATE = 16_000  # model input rate; callers resample (engine.audio_features.resample) before push
HOP_S = 0.01  # one MouthFrame per 10 ms hop
CONTROLS: tuple[str, ...] = ("jaw_open", "lip_width", "lip_round", "lip_close", "voiced")  # the model's "mouth" output
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "assets" / "audio_mouth.onnx"
__all__ = ["HOP_S", "SAMPLE_RATE", "VISEMES", "AudioMouthModel", "MouthFrame", "MouthStream"]
assert _FEATURE_RATE == SAMPLE_RATE and HOP == int(SAMPLE_RATE * HOP_S)


@dataclass(frozen=True, slots=True)
class MouthFrame:
    """The mouth for one 10 ms hop of audio."""

    t: float  # seconds on the stream's audio timeline (centre of the hop)
    viseme: int  # argmax index into VISEMES
    probs: np.ndarray  # (15,) f32, sums to 1
    jaw_open: float  # [0, 1]: 0 closed/rest, 1 widest open vowel
    lip_width: float  # [-1, 1]: -1 pursed/rounded-narrow, 0 rest, +1 spread (E/I)
    lip_round: float  # [0, 1]: protrusion/rounding (O/U/w)
    lip_close: float  # [0, 1]: 1 = lips pressed together (p/b/m), 0 = apart
    voiced: float  # [0, 1]: speech activity / loudness proxy (0 in silence)

    @property
    def viseme_name(self) -> str:
        return VISEMES[self.viseme]


def _check_pcm(pcm: np.ndarray) -> np.ndarray:
    """Validate one chunk at the edge: mono float in [-1, 1], finite; returns it as contiguous f32."""
    if not isinstance(pcm, np.ndarray):
        raise InputError(f"audio must be a NumPy array of float32 samples, got {type(pcm).__name__}")
    if pcm.ndim != 1:
        raise InputError(
            f"audio must be mono, shape (n,), got shape {pcm.shape}; mix channels down first (e.g. pcm.mean(axis=1))"
        )
    if not np.issubdtype(pcm.dtype, np.floating):
        raise InputError(
            f"audio must be float32 in [-1, 1], got dtype {pcm.dtype}; "
            "convert PCM16 with pcm.astype(np.float32) / 32768"
        )
    x = np.ascontiguousarray(pcm, dtype=np.float32)
    if x.size and not np.isfinite(x).all():
        raise InputError("audio contains NaN or infinite samples")
    if x.size and float(np.abs(x).max()) > 2.0:
        raise InputError("audio samples exceed [-1, 1] (looks like unscaled PCM16); divide by 32768")
    return x


class AudioMouthModel:
    """The loaded ONNX model (blocking load once); make one ``MouthStream`` per session with ``stream()``."""

    def __init__(self, session: object, path: Path, context: int, lookahead: int, hidden: int) -> None:
        self._session = session
        self.path = path
        self.context_frames = context  # feature frames of history the model's conv front-end needs
        self.lookahead_frames = lookahead  # GRU steps between a hop's features and its output
        self.hidden = hidden
        # The latest sample frame i needs lies lookahead hops after its hop's end, i.e. half a hop past its centre.
        self.lookahead_s: float = (lookahead + 0.5) * HOP_S

    @classmethod
    def load(cls, path: str | Path | None = None, threads: int = 1) -> AudioMouthModel:
        """Open the ONNX model (default: the shipped assets/audio_mouth.onnx); CPU unless CUDA is available."""
        import onnxruntime as ort

        model_path = Path(path) if path is not None else DEFAULT_MODEL
        if not model_path.is_file():
            raise InputError(f"audio mouth model not found: {model_path} (train one with 'livepuppet train-audio')")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        providers = [p for p in wanted if p in ort.get_available_providers()]
        try:
            session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
            raise InputError(f"cannot load audio mouth model {model_path}: {exc}".splitlines()[0]) from exc
        meta = session.get_modelmeta().custom_metadata_map
        names_in = [i.name for i in session.get_inputs()]
        names_out = [o.name for o in session.get_outputs()]
        if names_in != ["mel", "h0"] or names_out != ["probs", "mouth", "h1"]:
            raise InputError(f"{model_path} is not an audio mouth model (inputs {names_in}, outputs {names_out})")
        try:
            context, lookahead, hidden = (int(meta[k]) for k in ("context_frames", "lookahead_frames", "hidden"))
            n_mels = int(meta["n_mels"])
        except (KeyError, ValueError) as exc:
            raise InputError(f"{model_path} lacks the audio mouth metadata ({exc})") from exc
        if n_mels != N_MELS:
            raise InputError(f"{model_path} expects {n_mels} mel bands, the runtime computes {N_MELS}")
        return cls(session, model_path, context, lookahead, hidden)

    def stream(self) -> MouthStream:
        """A new per-session stream (own buffers and recurrent state); cheap."""
        return MouthStream(self)

    def infer(self, pcm: np.ndarray) -> list[MouthFrame]:
        """Whole clip ``(n,) f32 [-1,1] mono 16 kHz`` → one frame per started 10 ms hop (same as push + flush)."""
        stream = self.stream()
        return stream.push(pcm) + stream.flush()

    def run(self, mel: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One ONNX call: ``mel (T, N_MELS) f32`` (incl. context), ``h (1, 1, H)`` → probs, mouth, new h."""
        probs, mouth, h1 = self._session.run(None, {"mel": mel[None], "h0": h})  # type: ignore[attr-defined]
        return probs[0], mouth[0], h1


class MouthStream:
    """Per-session streaming state: PCM in, ``MouthFrame``s out, in order, ``t`` strictly increasing."""

    def __init__(self, model: AudioMouthModel) -> None:
        self._model = model
        self._features = LogMelStream()
        self._history = np.full((model.context_frames, N_MELS), SILENCE_VALUE, np.float32)
        self._h = np.zeros((1, 1, model.hidden), np.float32)
        self._steps = 0  # model steps run so far (feature frames consumed)
        self._samples = 0  # samples pushed since the last reset

    def reset(self) -> None:
        """Barge-in: forget all audio and state; the timeline restarts at 0."""
        self._features.reset()
        self._history[:] = SILENCE_VALUE
        self._h[:] = 0.0
        self._steps = 0
        self._samples = 0

    def push(self, pcm: np.ndarray) -> list[MouthFrame]:
        """Feed ``(n,) f32 [-1,1] mono 16 kHz`` (any n); returns every frame whose look-ahead is now available."""
        x = _check_pcm(pcm)
        self._samples += len(x)
        return self._run(self._features.push(x))

    def flush(self) -> list[MouthFrame]:
        """End of utterance: pad with silence and emit the remaining frames, then start a fresh timeline."""
        hops = -(-self._samples // HOP)  # frames owed: one per started hop
        pad = (hops + self._model.lookahead_frames) * HOP - self._samples
        frames = self._run(self._features.push(np.zeros(max(pad, 0), np.float32)))
        frames = [f for f in frames if f.t < hops * HOP_S]
        self.reset()
        return frames

    def _run(self, mel: np.ndarray) -> list[MouthFrame]:
        if len(mel) == 0:
            return []
        context = self._model.context_frames
        window = np.concatenate([self._history, mel]) if context else mel
        probs, mouth, self._h = self._model.run(window, self._h)
        if context:
            self._history = window[-context:].copy()
        first = self._steps
        self._steps += len(mel)
        skip = max(0, self._model.lookahead_frames - first)  # the first outputs precede the timeline's start
        visemes = np.argmax(probs[skip:], axis=1).tolist()  # one call for the chunk's frames, not one per frame
        controls = mouth[skip:].tolist()
        frames: list[MouthFrame] = []
        for k, viseme, (jaw, width, rnd, close, voiced) in zip(range(skip, len(mel)), visemes, controls,
                                                                strict=True):
            index = first + k - self._model.lookahead_frames
            frames.append(MouthFrame(t=(index + 0.5) * HOP_S, viseme=viseme, probs=probs[k], jaw_open=jaw,
                                     lip_width=width, lip_round=rnd, lip_close=close, voiced=voiced))
        return frames
