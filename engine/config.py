"""One configuration object for the engine, built from a ``configs/*.toml`` preset plus CLI overrides.

Each subsystem has its own frozen dataclass; unknown keys and out-of-range values are errors with a
message that names the key. Building a config does no I/O: :func:`load_config` reads the file first.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from livepuppet.errors import ConfigError


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """MediaPipe face-mesh settings."""

    refine_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    max_side: int = 640  # frames larger than this are downscaled before tracking (speed)

    def __post_init__(self) -> None:
        _check_range("tracker.min_detection_confidence", self.min_detection_confidence, 0.0, 1.0)
        _check_range("tracker.min_tracking_confidence", self.min_tracking_confidence, 0.0, 1.0)
        _check_range("tracker.max_side", self.max_side, 128, 4096)


@dataclass(frozen=True, slots=True)
class RetargetConfig:
    """How the driver's motion maps onto the portrait."""

    mode: str = "expression"  # "expression": via coefficients (identity-safe); "landmarks": raw deltas
    head_gain: float = 1.0
    translation_gain: float = 1.0
    eye_gain: float = 1.0
    brow_gain: float = 1.0
    mouth_gain: float = 1.0
    gaze_gain: float = 1.0
    eye_retargeting: bool = True  # transfer blinks / eye openness
    lip_retargeting: bool = True  # transfer mouth motion
    max_yaw: float = 25.0  # a 2-D warp shows seams beyond this
    max_pitch: float = 25.0
    max_roll: float = 30.0
    max_translation: float = 0.6  # inter-ocular units, approached softly: the head moves relative to the body
    max_head_scale: float = 0.12  # the head grows or shrinks by at most this fraction, approached softly
    max_mouth_open: float = 0.9  # inter-ocular units
    # Per-channel One Euro filters (Casiez et al. 2012); trade-off measured in docs/performance.md.
    filter_min_cutoff: float = 5.0  # Hz, mouth opening, jaw and lids (fast channels: little smoothing)
    filter_beta: float = 1.0  # cutoff rise per unit/s of speed (fast channels)
    filter_d_cutoff: float = 4.0  # Hz, the speed estimate's own filter
    filter_lead: float = 1.0  # fast channels: predict this fraction of the filter's lag along the speed
    slow_filter_ratio: float = 0.3  # brows, smile, mouth width/round, gaze: min cutoff × this
    head_filter_ratio: float = 0.06  # head pose: min cutoff × this (0.3 Hz: the tracker's pose wobbles most)
    head_filter_beta: float = 3.0  # head pose: cutoff rise per rad/s (angles) or inter-ocular unit/s
    head_filter_d_cutoff: float = 1.0  # Hz, head pose: the speed estimate's filter (the tracker's pose noise
    #   would otherwise read as speed and open the filter on a still face)
    max_delta: float = 0.5  # landmarks mode: no point moves further than this from neutral (inter-ocular units)
    lost_hold_s: float = 0.4  # hold the last motion this long after the face is lost ...
    lost_ease_s: float = 0.8  # ... then ease back to neutral over this long

    def __post_init__(self) -> None:
        if self.mode not in ("expression", "landmarks"):
            raise ConfigError(f"retarget.mode must be 'expression' or 'landmarks', not {self.mode!r}")
        for name in ("head_gain", "translation_gain", "eye_gain", "brow_gain", "mouth_gain", "gaze_gain"):
            _check_range(f"retarget.{name}", getattr(self, name), 0.0, 3.0)
        for name in ("max_yaw", "max_pitch", "max_roll"):
            _check_range(f"retarget.{name}", getattr(self, name), 0.0, 90.0)
        _check_range("retarget.max_translation", self.max_translation, 0.0, 3.0)
        _check_range("retarget.max_head_scale", self.max_head_scale, 0.0, 0.5)
        _check_range("retarget.filter_min_cutoff", self.filter_min_cutoff, 0.01, 100.0)
        _check_range("retarget.filter_beta", self.filter_beta, 0.0, 100.0)
        _check_range("retarget.filter_d_cutoff", self.filter_d_cutoff, 0.01, 100.0)
        _check_range("retarget.filter_lead", self.filter_lead, 0.0, 2.0)
        _check_range("retarget.slow_filter_ratio", self.slow_filter_ratio, 0.01, 10.0)
        _check_range("retarget.head_filter_ratio", self.head_filter_ratio, 0.001, 10.0)
        _check_range("retarget.head_filter_beta", self.head_filter_beta, 0.0, 100.0)
        _check_range("retarget.head_filter_d_cutoff", self.head_filter_d_cutoff, 0.01, 100.0)
        _check_range("retarget.max_delta", self.max_delta, 0.0, 2.0)
        _check_range("retarget.lost_hold_s", self.lost_hold_s, 0.0, 60.0)
        _check_range("retarget.lost_ease_s", self.lost_ease_s, 0.0, 60.0)


@dataclass(frozen=True, slots=True)
class DriverConfig:
    """Which driver tracks may drive the avatar, and when the driver's neutral is learned again."""

    max_fit_residual: float = 0.07  # RMS distance (inter-ocular units) of the stable points from the
    #   canonical face after the rigid fit: real faces 0.01-0.04, swirled/upside-down/drawn faces ≥ 0.10
    min_face_px: float = 12.0  # inter-ocular distance in pixels below which a track is not trusted
    max_abs_angle: float = 60.0  # degrees of absolute yaw or pitch beyond which the mesh is unreliable
    max_scale_jump: float = 0.25  # |log scale ratio| between successive faces that means a cut
    max_shift_jump: float = 1.5  # eye-midpoint jump (inter-ocular units) between successive faces: a cut
    lost_relearn_s: float = 1.0  # a face gone this long is a new sitting: learn its neutral again
    identity_threshold: float = 0.0  # face-shape signature distance meaning another person (0 = off)
    identity_confirm_s: float = 0.3  # ... held this long (while the head is near its reference pose)
    max_look_jump: float = 8.0  # median Lab change of the face's patch colours between successive faces that
    #   means a cut (0 = off): 0.8 typical and ≤ 2.6 within a shot, 24 at a cut between two people
    look_confirm_s: float = 0.1  # ... and the new look held this long (a passing hand or a flash goes back)
    ease_s: float = 0.3  # a new neutral is eased in over this long instead of jumping

    def __post_init__(self) -> None:
        _check_range("driver.max_fit_residual", self.max_fit_residual, 0.001, 10.0)
        _check_range("driver.min_face_px", self.min_face_px, 0.0, 1000.0)
        _check_range("driver.max_abs_angle", self.max_abs_angle, 1.0, 180.0)
        _check_range("driver.max_scale_jump", self.max_scale_jump, 0.01, 10.0)
        _check_range("driver.max_shift_jump", self.max_shift_jump, 0.01, 100.0)
        _check_range("driver.lost_relearn_s", self.lost_relearn_s, 0.0, 3600.0)
        _check_range("driver.identity_threshold", self.identity_threshold, 0.0, 10.0)
        _check_range("driver.identity_confirm_s", self.identity_confirm_s, 0.0, 10.0)
        _check_range("driver.max_look_jump", self.max_look_jump, 0.0, 200.0)
        _check_range("driver.look_confirm_s", self.look_confirm_s, 0.0, 10.0)
        _check_range("driver.ease_s", self.ease_s, 0.0, 10.0)


CPU_WARPS = ("auto", "jit", "opencv")


@dataclass(frozen=True, slots=True)
class RenderConfig:
    """Mesh renderer settings."""

    renderer: str = "mesh"
    crop_size: int = 512  # side of the square face crop that is animated (256 or 512 typical)
    crop_scale: float = 4.6  # crop side in face units (inter-ocular distances) (head, hair and some neck)
    map_scale: float = 0.5  # OpenCV warp: resolution of the dense warp map relative to the crop (it is smooth)
    mouth_interior: bool = True  # synthesize cavity, teeth and tongue when the mouth opens
    device: str = "cpu"
    # CPU mesh warp: "jit" (compiled by Numba, exact at full resolution, the GPU kernels' algorithm),
    # "opencv" (coarse map from OpenCV rasterization, upsampled and refined; no Numba needed) or "auto".
    cpu_warp: str = "auto"
    weights: str = ""  # neural renderer: directory of LivePortrait checkpoints (or a distilled student)

    def __post_init__(self) -> None:
        if self.renderer not in ("mesh", "neural"):
            raise ConfigError(f"render.renderer {self.renderer!r} is not available; use 'mesh' or 'neural'")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError(f"render.device must be 'cpu' or 'cuda' (or 'cuda:N'), not {self.device!r}")
        if self.cpu_warp not in CPU_WARPS:
            raise ConfigError(f"render.cpu_warp must be one of {', '.join(CPU_WARPS)}, not {self.cpu_warp!r}")
        _check_range("render.crop_size", self.crop_size, 64, 2048)
        _check_range("render.crop_scale", self.crop_scale, 2.0, 8.0)
        _check_range("render.map_scale", self.map_scale, 0.125, 1.0)


@dataclass(frozen=True, slots=True)
class CompositeConfig:
    """Paste-back of the animated crop into the full portrait."""

    feather: float = 0.12  # feather width as a fraction of the crop side
    color_match: float = 0.0  # 0..1: move the face's colour statistics towards the surrounding frame's
    # Outside the face, warp the photo itself by the renderer's map (one bicubic resampling at its own
    # resolution) instead of pasting the crop back: keeps a collar or hair that moves as sharp as the photo.
    full_resolution: bool = True

    def __post_init__(self) -> None:
        _check_range("composite.feather", self.feather, 0.0, 0.5)
        _check_range("composite.color_match", self.color_match, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class OutputConfig:
    """Encoded video output."""

    fps: float = 25.0
    codec: str = "libx264"
    crf: int = 20
    max_side: int = 1280  # output frames are downscaled to at most this side (even dimensions)

    def __post_init__(self) -> None:
        _check_range("output.fps", self.fps, 1.0, 120.0)
        _check_range("output.crf", self.crf, 0, 51)
        _check_range("output.max_side", self.max_side, 64, 8192)


EMOTIONS = ("neutral", "happy", "sad", "surprised", "angry")


@dataclass(frozen=True, slots=True)
class SpeechConfig:
    """Audio-driven talking head: how speech, idle life and emotion move the face."""

    fps: float = 25.0  # video frames per second of speech (WebSocket frames mode and ``speak``)
    mouth_gain: float = 1.0
    blink_rate_per_min: float = 16.0  # people blink ~15–20 times a minute
    sway_deg: float = 2.0  # idle head sway amplitude
    nod_gain: float = 1.0  # head nods on stressed syllables (energy onsets)
    brow_gain: float = 1.0  # brow raises on pitch accents
    gaze_shifts: bool = True  # small saccades, more while listening than while speaking
    emotion: str = "neutral"
    emotion_intensity: float = 0.7
    preroll_s: float = 0.045  # audio buffered before playback starts (covers the model's 35 ms look-ahead)
    max_buffer_s: float = 120.0  # audio a client may send ahead of playback (TTS is faster than real time)
    # Frames mode: skip a frame a real-time listener could have heard longer ago than this when a newer one
    # is ready (the server past capacity, a slow client); 0 renders every frame, however late.
    frames_max_lag_s: float = 0.25
    seed: int = 0  # idle motion and blinks are random but reproducible
    model: str = ""  # audio→mouth ONNX model; empty = the one shipped in assets/ (see livepuppet train-audio)

    def __post_init__(self) -> None:
        _check_range("speech.fps", self.fps, 1.0, 120.0)
        _check_range("speech.mouth_gain", self.mouth_gain, 0.0, 3.0)
        _check_range("speech.blink_rate_per_min", self.blink_rate_per_min, 0.0, 60.0)
        _check_range("speech.sway_deg", self.sway_deg, 0.0, 15.0)
        _check_range("speech.nod_gain", self.nod_gain, 0.0, 3.0)
        _check_range("speech.brow_gain", self.brow_gain, 0.0, 3.0)
        _check_range("speech.emotion_intensity", self.emotion_intensity, 0.0, 1.0)
        _check_range("speech.preroll_s", self.preroll_s, 0.0, 1.0)
        _check_range("speech.max_buffer_s", self.max_buffer_s, 1.0, 3600.0)
        _check_range("speech.frames_max_lag_s", self.frames_max_lag_s, 0.0, 60.0)
        if self.emotion not in EMOTIONS:
            raise ConfigError(f"speech.emotion must be one of {', '.join(EMOTIONS)}, not {self.emotion!r}")


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The real-time server: network, safety limits and stream settings (``livepuppet serve``)."""

    host: str = "127.0.0.1"
    port: int = 8080
    ws_port: int = 0  # audio WebSocket port; 0 = port + 1
    token: str = ""  # bearer token; required when listening beyond localhost
    allowed_origins: tuple[str, ...] = ()  # extra browser origins allowed besides the server's own
    max_sessions: int = 4
    idle_timeout_s: float = 30.0  # a session with no input frames for this long is closed
    connect_timeout_s: float = 10.0  # a WebRTC session whose peer has not connected this long after its offer
    max_upload_bytes: int = 10_000_000
    max_upload_pixels: int = 25_000_000
    max_portraits: int = 32  # uploaded portraits kept in memory (oldest evicted)
    fps: float = 30.0  # output cadence; the last frame repeats when the engine is late
    video_bitrate: int = 2_500_000  # VP8/H.264 target bits/s (aiortc's default 500 kbit/s looks poor at 512²)
    engine_workers: int = 1  # engine threads per engine (the front's when workers = 0, each worker's otherwise)
    workers: int = 0  # engine worker processes: 0 = in this process (embedding, tests), -1 = one per core (CPU presets)
    admission: str = "refuse"  # at capacity: "refuse" new sessions (503 + Retry-After) or "accept" (all degrade)
    capacity_margin: float = 0.1  # refuse once measured engine load exceeds (1 - margin) of the cores
    latency_probe: bool = False  # copy the input's top-left probe strip into the output (latency harness)
    ice_addresses: tuple[str, ...] = ()  # advertise only these host addresses to ICE (e.g. ["127.0.0.1"])
    # Per client address (token buckets; 0 per minute = no limit): sessions opened (WHIP, WHEP, frames-mode
    # WebSocket) and portraits uploaded. Over the limit: HTTP 429 with Retry-After.
    session_rate_per_min: float = 60.0
    session_burst: int = 20
    upload_rate_per_min: float = 20.0
    upload_burst: int = 8
    max_portrait_side: int = 1280  # portraits are kept downscaled to this (the face crop is cut at full size)

    def __post_init__(self) -> None:
        _check_range("server.port", self.port, 0, 65535)
        _check_range("server.ws_port", self.ws_port, 0, 65535)
        _check_range("server.max_sessions", self.max_sessions, 1, 256)
        _check_range("server.idle_timeout_s", self.idle_timeout_s, 1.0, 86400.0)
        _check_range("server.connect_timeout_s", self.connect_timeout_s, 1.0, 600.0)
        _check_range("server.max_upload_bytes", self.max_upload_bytes, 1000, 200_000_000)
        _check_range("server.max_upload_pixels", self.max_upload_pixels, 10_000, 200_000_000)
        _check_range("server.max_portraits", self.max_portraits, 1, 1000)
        _check_range("server.fps", self.fps, 1.0, 120.0)
        _check_range("server.video_bitrate", self.video_bitrate, 50_000, 50_000_000)
        _check_range("server.engine_workers", self.engine_workers, 1, 64)
        _check_range("server.session_rate_per_min", self.session_rate_per_min, 0.0, 100_000.0)
        _check_range("server.session_burst", self.session_burst, 1, 10_000)
        _check_range("server.upload_rate_per_min", self.upload_rate_per_min, 0.0, 100_000.0)
        _check_range("server.upload_burst", self.upload_burst, 1, 10_000)
        _check_range("server.max_portrait_side", self.max_portrait_side, 256, 16_384)
        _check_range("server.workers", self.workers, -1, 256)
        _check_range("server.capacity_margin", self.capacity_margin, 0.0, 0.9)
        if self.admission not in ("refuse", "accept"):
            raise ConfigError(f"server.admission must be 'refuse' or 'accept', not {self.admission!r}")

    @property
    def worker_processes(self) -> int:
        """How many engine worker processes to start (``workers = -1``: one per core, at most one per session
        allowed)."""
        if self.workers >= 0:
            return self.workers
        return min(machine_cores(), self.max_sessions)  # a worker with no session to run is memory for nothing

    @property
    def audio_port(self) -> int:
        return self.ws_port or (self.port + 1 if self.port else 0)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The whole engine's configuration, passed down from the CLI or server."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    driver: DriverConfig = field(default_factory=DriverConfig)
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    composite: CompositeConfig = field(default_factory=CompositeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)


T = TypeVar("T")


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{name} = {value} is out of range [{lo}, {hi}]")


def _build(cls: type[T], data: dict[str, Any], prefix: str) -> T:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys and wrong types."""
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]!r}; known: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        hint = hints[key]
        if is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"config section {prefix}{key} must be a table")
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")  # type: ignore[arg-type]
        else:
            kwargs[key] = _coerce(f"{prefix}{key}", hint, value)
    return cls(**kwargs)


def _coerce(name: str, hint: Any, value: Any) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, not {value!r}")
        return value
    if get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings, not {value!r}")
        return tuple(value)
    return value


def config_from_dict(data: dict[str, Any]) -> EngineConfig:
    """Build an :class:`EngineConfig` from nested dicts (e.g. parsed TOML). No I/O."""
    return _build(EngineConfig, data, "")


def preset_names() -> list[str]:
    """Names of the presets shipped in ``configs/``."""
    root = resources.files("livepuppet.configs")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def _read_preset(preset: str | Path) -> dict[str, Any]:
    path = Path(preset)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        text = path.read_text(encoding="utf-8")
    else:
        candidate = resources.files("livepuppet.configs") / f"{preset}.toml"
        if not candidate.is_file():
            raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(preset_names())}")
        text = candidate.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {preset}: {exc}") from exc


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"render.crop_size=256"`` → (["render", "crop_size"], 256). Values use TOML syntax; a bare word
    that is not valid TOML is taken as a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    path = [part.strip() for part in key.strip().split(".")]
    if len(path) < 2 or not all(path):
        raise ConfigError(f"override {text!r} must name section.key")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def load_config(preset: str | Path | None = "cpu-realtime", overrides: list[str] | None = None) -> EngineConfig:
    """Preset (a shipped name or a TOML path) + ``section.key=value`` overrides → :class:`EngineConfig`."""
    data: dict[str, Any] = _read_preset(preset) if preset is not None else {}
    for text in overrides or []:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
        node[path[-1]] = value
    return config_from_dict(data)
