"""A procedural rig: expression coefficients → landmark displacements of one particular face.

Built once per portrait from its neutral face-frame landmarks. Each coefficient owns a displacement
basis (478, 3) shaped by the face's own geometry (mouth size, lid spacing, brow height), so the same
coefficients look natural on any face. The rig is linear in the coefficients, then lips and lids are
kept from crossing. Units follow :class:`Expression`; landmarks are in the face frame (y down).
"""

from __future__ import annotations

import numpy as np
from livepuppet.engine.face import topology as ft
from livepuppet.engine.face.expression import CORNER_JAW_FOLLOW, ROUND_NARROWING, SMILE_WIDEN
from livepuppet.engine.types import Expression

_LIPS_UPPER = np.array(ft.LIP_OUTER_UPPER[1:-1] + ft.LIP_INNER_UPPER[1:-1])
_LIPS_LOWER = np.array(ft.LIP_OUTER_LOWER[1:-1] + ft.LIP_INNER_LOWER[1:-1])
_INNER_U, _INNER_L = np.array(ft.LIP_INNER_UPPER[1:-1]), np.array(ft.LIP_INNER_LOWER[1:-1])
_OUTER_U, _OUTER_L = np.array(ft.LIP_OUTER_UPPER[1:-1]), np.array(ft.LIP_OUTER_LOWER[1:-1])
_CORNERS = np.array([ft.MOUTH_CORNER_R, ft.MOUTH_CORNER_L, ft.INNER_CORNER_R, ft.INNER_CORNER_L])
_ALL_LIPS = np.unique(np.concatenate([_LIPS_UPPER, _LIPS_LOWER, _CORNERS]))
_MEASURED_U, _MEASURED_L = np.array(ft.LIP_INNER_UPPER[2:-2]), np.array(ft.LIP_INNER_LOWER[2:-2])

COEFFS = ("jaw", "lip_part", "mouth_width", "smile", "mouth_round", "brow_raise", "eye_r", "eye_l",
          "gaze_x", "gaze_y")


def _smooth(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class FaceRig:
    """Linear displacement bases for one neutral face ``(478, 3)`` in face-frame units."""

    def __init__(self, neutral: np.ndarray) -> None:
        self.neutral = np.asarray(neutral, dtype=np.float64).copy()
        n = self.neutral
        self._mouth_center = n[_ALL_LIPS, :2].mean(axis=0)
        self._half_width = 0.5 * float(np.linalg.norm(n[ft.MOUTH_CORNER_L, :2] - n[ft.MOUTH_CORNER_R, :2]))
        bases = {name: np.zeros_like(n) for name in COEFFS}
        self._build_mouth(bases)
        self._build_brows(bases["brow_raise"])
        self._build_eye(bases["eye_r"], ft.EYE_R_UPPER, ft.EYE_R_LOWER, ft.EYE_R_UPPER_RING,
                        ft.EYE_R_LOWER_RING, ft.IRIS_R)
        self._build_eye(bases["eye_l"], ft.EYE_L_UPPER, ft.EYE_L_LOWER, ft.EYE_L_UPPER_RING,
                        ft.EYE_L_LOWER_RING, ft.IRIS_L)
        self._build_gaze(bases["gaze_x"], bases["gaze_y"])
        # Normalize the mouth bases so one unit of coefficient = one unit of measured change.
        bases["lip_part"] /= max(self._gap_gain(bases["lip_part"]), 1e-6)
        self._jaw_gap_gain = self._gap_gain(bases["jaw"])
        self._round_gap_gain = self._gap_gain(bases["mouth_round"])
        self._basis = np.stack([bases[name] for name in COEFFS], axis=-1)  # (478, 3, K)

    @staticmethod
    def _gap_gain(basis: np.ndarray) -> float:
        return float(np.mean(basis[_MEASURED_L, 1] - basis[_MEASURED_U, 1]))

    def _mouth_weight(self) -> np.ndarray:
        """1 on and near the lips, fading to 0 about one mouth-width away."""
        n = self.neutral
        hw = max(self._half_width, 1e-3)
        d = np.hypot((n[:, 0] - self._mouth_center[0]) / (1.6 * hw), (n[:, 1] - self._mouth_center[1]) / (1.2 * hw))
        w = 1.0 - _smooth((d - 0.7) / 0.8)
        w[_ALL_LIPS] = 1.0
        return w

    def _build_mouth(self, bases: dict[str, np.ndarray]) -> None:
        n = self.neutral
        xc, yc = self._mouth_center
        hw = max(self._half_width, 1e-3)
        dx = n[:, 0] - xc
        across = np.clip(np.abs(dx) / hw, 0.0, 1.0)
        y_nose = n[ft.NOSE_BASE, 1]
        y_corner = 0.5 * (n[ft.MOUTH_CORNER_R, 1] + n[ft.MOUTH_CORNER_L, 1])
        y_lower = n[ft.LIP_INNER_LOWER[5], 1]
        y = n[:, 1]
        vertical = np.where(y <= y_corner, 0.35 * _smooth((y - y_nose) / max(y_corner - y_nose, 1e-3)),
                            0.35 + 0.65 * _smooth((y - y_corner) / max(y_lower - y_corner, 1e-3)))
        lateral = 1.0 - 0.8 * _smooth((np.abs(dx) - 0.5) / 0.6)
        jaw = vertical * lateral
        jaw[_LIPS_UPPER] = 0.0
        jaw[_LIPS_LOWER] = 1.0 - 0.6 * across[_LIPS_LOWER] ** 2
        jaw[_CORNERS] = CORNER_JAW_FOLLOW
        bases["jaw"][:, 1] = jaw

        part = bases["lip_part"]
        shape = 1.0 - across**2
        part[_INNER_L, 1] = 0.6 * shape[_INNER_L]
        part[_OUTER_L, 1] = 0.45 * shape[_OUTER_L]
        part[_INNER_U, 1] = -0.4 * shape[_INNER_U]
        part[_OUTER_U, 1] = -0.25 * shape[_OUTER_U]

        w_mouth = self._mouth_weight()
        bases["mouth_width"][:, 0] = dx * w_mouth

        corner_pts = n[[ft.MOUTH_CORNER_R, ft.MOUTH_CORNER_L], :2]
        dist = np.min(np.linalg.norm(n[:, None, :2] - corner_pts[None], axis=-1), axis=1)
        cheek = np.exp(-0.5 * (dist / 0.28) ** 2)
        lift = np.where(np.isin(np.arange(len(n)), _ALL_LIPS), across**1.5, cheek)
        smile = bases["smile"]
        smile[:, 1] = -lift
        smile[:, 0] = SMILE_WIDEN * np.sign(dx) * lift
        for lower in (ft.EYE_R_LOWER, ft.EYE_L_LOWER):  # cheeks push the lower lids up a little
            smile[np.array(lower), 1] -= 0.08

        rnd = bases["mouth_round"]
        rnd[:, 0] = -ROUND_NARROWING * dx * w_mouth
        rnd[:, 2] = -0.1 * w_mouth
        rnd[_INNER_L, 1] += 0.04 * shape[_INNER_L]
        rnd[_INNER_U, 1] -= 0.04 * shape[_INNER_U]

    def _build_brows(self, basis: np.ndarray) -> None:
        n = self.neutral
        brows = np.array(ft.BROW_R + ft.BROW_L)
        y_brow = float(n[brows, 1].mean())
        above = np.where(n[:, 1] < y_brow, 0.8 * np.exp(-(((n[:, 1] - y_brow) / 0.45) ** 2)), 0.0)
        above *= np.abs(n[:, 0]) < 1.4
        basis[:, 1] = -above
        basis[brows, 1] = -1.0
        for ring in (ft.EYE_R_UPPER_RING, ft.EYE_L_UPPER_RING):
            basis[np.array(ring), 1] = -0.35
        for upper in (ft.EYE_R_UPPER, ft.EYE_L_UPPER):
            basis[np.array(upper), 1] = -0.08

    def _build_eye(self, basis: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...],
                   upper_ring: tuple[int, ...], lower_ring: tuple[int, ...], iris: tuple[int, ...]) -> None:
        """Basis for (open - 1): lids move towards a closure line a quarter up from the lower lid."""
        n = self.neutral
        u, lo = np.array(upper), np.array(lower)
        mid = n[lo] + 0.25 * (n[u] - n[lo])  # (7, 3): lids meet in 3-D, so they meet in any view
        basis[u] = n[u] - mid
        basis[lo] = n[lo] - mid
        xs = n[u, 0]
        order = np.argsort(xs)

        def mid_at(x: np.ndarray, axis: int) -> np.ndarray:
            return np.interp(x, xs[order], mid[order, axis])

        def nearest(points: np.ndarray, candidates: np.ndarray) -> np.ndarray:
            return candidates[np.argmin(np.abs(n[points, 0][:, None] - n[candidates, 0][None]), axis=1)]

        ur, lr = np.array(upper_ring), np.array(lower_ring)
        basis[ur] = 0.45 * basis[nearest(ur, u)]
        basis[lr] = 0.15 * basis[nearest(lr, lo)]
        ir = np.array(iris)
        for axis in (1, 2):
            basis[ir, axis] = n[ir, axis] - mid_at(n[ir, 0], axis)

    def _build_gaze(self, bx: np.ndarray, by: np.ndarray) -> None:
        n = self.neutral
        for iris, outer, inner in ((ft.IRIS_R, ft.EYE_R_OUTER, ft.EYE_R_INNER),
                                   (ft.IRIS_L, ft.EYE_L_OUTER, ft.EYE_L_INNER)):
            half = 0.5 * float(np.linalg.norm(n[outer, :2] - n[inner, :2]))
            bx[np.array(iris), 0] = half
            by[np.array(iris), 1] = half

    def coefficients(self, e: Expression) -> np.ndarray:
        """Expression → rig coefficient vector (K,), in the order of :data:`COEFFS`."""
        lip_part = e.mouth_open - e.jaw * self._jaw_gap_gain - e.mouth_round * self._round_gap_gain
        return np.array([e.jaw, lip_part, e.mouth_width, e.smile, e.mouth_round, e.brow_raise,
                         e.eye_open_r - 1.0, e.eye_open_l - 1.0, e.gaze_x, e.gaze_y])

    def apply(self, e: Expression, base: np.ndarray | None = None) -> np.ndarray:
        """Face-frame landmarks ``(478, 3)`` of this face making expression ``e``."""
        start = self.neutral if base is None else base
        out = start + self._basis @ self.coefficients(e)
        uncross(out)
        return out


_PAIRS = [
    (np.array(ft.LIP_INNER_UPPER[1:-1]), np.array(ft.LIP_INNER_LOWER[1:-1])),
    (np.array(ft.EYE_R_UPPER), np.array(ft.EYE_R_LOWER)),
    (np.array(ft.EYE_L_UPPER), np.array(ft.EYE_L_LOWER)),
]


def uncross(face: np.ndarray) -> None:
    """In place: where a lower lip/lid point rose above its upper partner, both meet in the middle (y and z)."""
    for upper, lower in _PAIRS:
        crossed = face[lower, 1] < face[upper, 1]
        if np.any(crossed):
            mean = 0.5 * (face[upper[crossed], 1:] + face[lower[crossed], 1:])
            face[upper[crossed], 1:] = mean
            face[lower[crossed], 1:] = mean
