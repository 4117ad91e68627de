"""Live controls a client may change during a session (gains, smoothing, neutral pose), parsed at the edge."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from livepuppet.engine.config import RetargetConfig
from livepuppet.errors import InputError

GAIN_RANGE = (0.0, 3.0)
SMOOTHING_RANGE = (0.0, 1.0)


@dataclass(frozen=True, slots=True)
class Controls:
    """Per-session settings. ``smoothing`` 0 = raw motion … 1 = heavy filtering (moves every channel's One
    Euro cutoff together: head pose and slow channels keep their ratio to mouth and lids). ``reset_neutral``
    takes the driver's current face as its neutral, eased in (the same call as ``animate --reset-neutral-at``).
    ``None`` leaves a value as configured."""

    head_gain: float | None = None
    eye_gain: float | None = None
    brow_gain: float | None = None
    mouth_gain: float | None = None
    gaze_gain: float | None = None
    smoothing: float | None = None
    eye_retargeting: bool | None = None
    lip_retargeting: bool | None = None
    reset_neutral: bool = False

    @classmethod
    def parse(cls, data: Any) -> Controls:
        """Validate a JSON object from a client; any problem is an :class:`InputError` naming the field."""
        if not isinstance(data, dict):
            raise InputError("controls must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown control {unknown[0]!r}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("eye_retargeting", "lip_retargeting", "reset_neutral"):
                if not isinstance(value, bool):
                    raise InputError(f"control {name} must be true or false")
                values[name] = value
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"control {name} must be a number")
            lo, hi = SMOOTHING_RANGE if name == "smoothing" else GAIN_RANGE
            if not lo <= float(value) <= hi:
                raise InputError(f"control {name} = {value} is out of range [{lo}, {hi}]")
            values[name] = float(value)
        return cls(**values)

    def changes_retarget(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name != "reset_neutral")

    def apply(self, config: RetargetConfig) -> RetargetConfig:
        """``config`` with these controls applied."""
        changes: dict[str, Any] = {}
        for name in ("head_gain", "eye_gain", "brow_gain", "mouth_gain", "gaze_gain", "eye_retargeting",
                     "lip_retargeting"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value
        if self.smoothing is not None:
            # 0 → 30 Hz cutoff (barely filtered) … 1 → 0.3 Hz (heavy), log-spaced; beta shrinks with it.
            changes["filter_min_cutoff"] = float(30.0 * (0.01 ** self.smoothing))
            changes["filter_beta"] = float(0.5 * (1.0 - self.smoothing) + 0.05)
        return replace(config, **changes)
