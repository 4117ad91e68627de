"""A constant-velocity Kalman filter per channel (position + velocity), vectorized over any array shape.

The state follows a white-acceleration model (process noise ``accel`` in units/s², the spread of the
acceleration), measured with noise ``noise`` (units, standard deviation). The posterior position has no
steady-state lag on a ramp, which a plain low-pass cannot offer; ``lead`` seconds of prediction along the
estimated velocity can be added on top. Time comes from the caller (seconds).
"""

from __future__ import annotations

import numpy as np

ArrayLike = float | np.ndarray


class ConstantVelocityKalman:
    """Independent 2-state Kalman filters, one per element of the arrays it is given."""

    def __init__(self, accel: ArrayLike, noise: ArrayLike, lead: ArrayLike = 0.0) -> None:
        self.accel = accel
        self.noise = noise
        self.lead = lead
        self._x: np.ndarray | None = None
        self._v: np.ndarray | None = None
        self._p: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # covariance (p00, p01, p11)
        self._t: float | None = None

    def reset(self) -> None:
        self._x = self._v = None
        self._p = None
        self._t = None

    def __call__(self, value: np.ndarray, t: float) -> np.ndarray:
        z = np.asarray(value, dtype=np.float64)
        r = np.broadcast_to(np.asarray(self.noise, dtype=np.float64) ** 2, z.shape)
        if self._x is None or self._v is None or self._p is None or self._t is None:
            self._x, self._v, self._t = z.copy(), np.zeros_like(z), t
            self._p = (r.copy(), np.zeros_like(z), np.full_like(z, 1e2) * np.maximum(r, 1e-12))
            return z.copy()
        dt = max(t - self._t, 1e-3)
        self._t = t
        q = np.asarray(self.accel, dtype=np.float64) ** 2
        p00, p01, p11 = self._p
        # Predict: x += v dt; P = F P F' + Q with Q = q [[dt³/3, dt²/2], [dt²/2, dt]] (Bar-Shalom, ch. 6).
        x = self._x + self._v * dt
        p00 = p00 + dt * (2.0 * p01 + dt * p11) + q * dt**3 / 3.0
        p01 = p01 + dt * p11 + q * dt**2 / 2.0
        p11 = p11 + q * dt
        # Update with the measured position.
        s = p00 + r
        k0, k1 = p00 / s, p01 / s
        innovation = z - x
        self._x = x + k0 * innovation
        self._v = self._v + k1 * innovation
        self._p = ((1.0 - k0) * p00, (1.0 - k0) * p01, p11 - k1 * p01)
        if np.any(self.lead):
            return self._x + self.lead * self._v
        return self._x.copy()
