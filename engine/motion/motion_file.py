"""Motion files: face motion without pixels (privacy, reuse, replay on any portrait or rig).

Format (JSON, version 1)::

    {"format": "livepuppet-motion", "version": 1, "fps": 25.0,
     "frames": [{"t": 0.04, "face": true,
                 "head": {"yaw": .., "pitch": .., "roll": .., "tx": .., "ty": .., "scale": ..},
                 "expression": {"eye_open_l": .., ...},
                 "deltas": [[dx, dy, dz] × 478]   # optional, face-frame units
                }, ...]}
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from livepuppet.engine.types import NUM_LANDMARKS, Expression, HeadMotion, Motion
from livepuppet.errors import InputError

FORMAT = "livepuppet-motion"
VERSION = 1


@dataclass(frozen=True, slots=True)
class MotionClip:
    """A sequence of motions at a frame rate."""

    fps: float
    motions: tuple[Motion, ...]


def _frame_to_json(m: Motion, decimals: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "t": round(m.pts / 1e9, 6),
        "face": m.face_found,
        "head": {k: round(v, decimals) for k, v in asdict(m.head).items()},
        "expression": {k: round(v, decimals) for k, v in asdict(m.expression).items()},
    }
    if m.deltas is not None:
        out["deltas"] = np.round(m.deltas.astype(np.float64), decimals).tolist()
    return out


def save_motion(path: str | Path, clip: MotionClip, decimals: int = 4) -> None:
    data = {"format": FORMAT, "version": VERSION, "fps": clip.fps,
            "frames": [_frame_to_json(m, decimals) for m in clip.motions]}
    Path(path).write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


def _typed(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise InputError(f"{where} must be an object")
    names = {f.name for f in fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise InputError(f"{where} has unknown keys {sorted(unknown)}")
    numbers = {}
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"{where}: {k} is {v!r}, not a finite number")
        numbers[k] = float(v)
    try:
        return cls(**numbers)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from exc


def load_motion(path: str | Path) -> MotionClip:
    """Read a motion file; malformed content raises :class:`InputError` naming the frame."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"motion file {p} does not exist") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p} is not a livepuppet motion file (not JSON: {exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{p} is not a livepuppet motion file (make one with 'livepuppet track')")
    if data.get("version") != VERSION:
        raise InputError(f"{p} has motion format version {data.get('version')}; this livepuppet reads {VERSION}")
    fps = data.get("fps")
    frames = data.get("frames")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 1 <= fps <= 240 \
            or not isinstance(frames, list) or not frames:
        raise InputError(f"{p}: needs a frame rate in [1, 240] and at least one frame")
    motions = []
    last_t = -math.inf
    for i, f in enumerate(frames):
        where = f"{p} frame {i}"
        if not isinstance(f, dict):
            raise InputError(f"{where} must be an object")
        deltas = None
        if "deltas" in f:
            try:
                deltas = np.asarray(f["deltas"], dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{where}: deltas must be {NUM_LANDMARKS}×3 numbers ({exc})") from exc
            if deltas.shape != (NUM_LANDMARKS, 3):
                raise InputError(f"{where}: deltas must be {NUM_LANDMARKS}×3, got {deltas.shape}")
            if not np.isfinite(deltas).all():
                raise InputError(f"{where}: deltas contain NaN or infinite values")
        t = f.get("t", i / fps)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise InputError(f"{where}: t must be a finite number of seconds ≥ 0, not {t!r}")
        if t < last_t:
            raise InputError(f"{where}: t = {t} goes back in time (the previous frame is at {last_t})")
        last_t = t
        head = _typed(HeadMotion, f.get("head", {}), where + " head")
        motions.append(Motion(pts=int(round(t * 1e9)), seq=i, head=head,
                              expression=_typed(Expression, f.get("expression", {}), where + " expression"),
                              deltas=deltas, face_found=bool(f.get("face", True))))
    return MotionClip(fps=float(fps), motions=tuple(motions))
