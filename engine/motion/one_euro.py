"""The One Euro filter (Casiez, Roussel, Vogel, CHI 2012): low jitter when still, low lag when moving.

Vectorized over any array shape; ``min_cutoff`` and ``beta`` may be arrays of that shape (one setting per
channel). An optional ``lead`` extrapolates the output along the filtered velocity by that fraction of the
filter's own time constant, cancelling part of its lag (a predictive One Euro). Time comes from the caller
(timestamps in seconds), never the wall clock.
"""

from __future__ import annotations

import math

import numpy as np

ArrayLike = float | np.ndarray


def _alpha(cutoff_hz: ArrayLike, dt: float) -> ArrayLike:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters successive arrays of one shape. ``reset()`` forgets the history."""

    def __init__(self, min_cutoff: ArrayLike = 1.5, beta: ArrayLike = 0.3, d_cutoff: ArrayLike = 1.0,
                 lead: ArrayLike = 0.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.lead = lead
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._raw: np.ndarray | None = None  # last input, and the speed of the input itself (for the lead)
        self._v: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self._x = self._dx = self._raw = self._v = None
        self._t = None

    def hold(self, value: np.ndarray, t: float) -> None:
        """Set the state to ``value`` at rest at time ``t`` (the caller drove the output itself, e.g. easing a
        lost face to neutral): the next input is filtered from there, without a jump."""
        x = np.asarray(value, dtype=np.float64)
        self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
        self._raw, self._v = x.copy(), np.zeros_like(x)

    def __call__(self, value: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(value, dtype=np.float64)
        if self._x is None or self._t is None or self._dx is None or self._raw is None or self._v is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            self._raw, self._v = x.copy(), np.zeros_like(x)
            return x.copy()
        dt = t - self._t
        if dt <= 0.0:
            dt = 1e-3  # repeated timestamp: treat as a very short step rather than dividing by zero
        self._t = t
        a_d = _alpha(self.d_cutoff, dt)
        dx = (x - self._x) / dt
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        tau = 1.0 / (2.0 * np.pi * cutoff)
        a = 1.0 / (1.0 + tau / dt)
        self._x = a * x + (1.0 - a) * self._x
        # The speed term above is the paper's (input minus the last *output*, so it overstates the speed by
        # 1 + tau/dt on a ramp); the lead needs the input's own speed, filtered like it.
        self._v = a_d * (x - self._raw) / dt + (1.0 - a_d) * self._v
        self._raw = x.copy()
        if np.any(self.lead):
            # This low-pass lags a ramp by exactly dt (1 - a) / a = tau: predict a fraction of that ahead.
            return self._x + self.lead * tau * self._v
        return self._x.copy()
