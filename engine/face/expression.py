"""Expression coefficients measured from face-frame landmarks, relative to a neutral reference.

All measurements are taken in the face frame (see :mod:`face_geometry`), so they do not depend on head
pose, distance or face size. The same definitions are used to check renders by re-tracking them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from livepuppet.engine.face import topology as ft
from livepuppet.engine.types import Expression, FaceTrack

_ER_U, _ER_L = np.array(ft.EYE_R_UPPER), np.array(ft.EYE_R_LOWER)
_EL_U, _EL_L = np.array(ft.EYE_L_UPPER), np.array(ft.EYE_L_LOWER)
_LIU, _LIL = np.array(ft.LIP_INNER_UPPER[2:-2]), np.array(ft.LIP_INNER_LOWER[2:-2])
_BROWS = np.array(ft.BROW_R + ft.BROW_L)
ROUND_NARROWING = 0.3  # mouth_round = 1 narrows the mouth by 30 % (shared with the rig)
CORNER_JAW_FOLLOW = 0.3  # mouth corners drop this much per unit of jaw drop (shared with the rig)
SMILE_WIDEN = 0.35  # each mouth corner moves out this much per unit of smile (shared with the rig)


@dataclass(frozen=True, slots=True)
class FaceFeatures:
    """Absolute shape measurements of one face (face-frame units = inter-ocular distance)."""

    eye_gap_r: float  # mean lid separation / eye width
    eye_gap_l: float
    brow_height: float  # mean brow y (negative: above the eyes)
    lip_gap: float  # mean inner-lip separation
    chin_y: float
    mouth_width: float
    corners_y: float  # mean height of the mouth corners (face frame, y down)
    iris_x: float  # iris offset from the eye center / eye half-width, both eyes averaged
    iris_y: float

    @staticmethod
    def of_track(track: FaceTrack) -> FaceFeatures | None:
        """Features of a tracked face (in its own face frame, from the pose the tracker fitted), or None."""
        if track.landmarks is None or track.pose is None:
            return None
        return FaceFeatures.measure(track.pose.to_face(track.landmarks.astype(np.float64)))

    @staticmethod
    def measure(face: np.ndarray) -> FaceFeatures:
        """``face (478, 3)`` face-frame landmarks → features."""
        f = np.asarray(face, dtype=np.float64)

        def eye(upper: np.ndarray, lower: np.ndarray, outer: int, inner: int) -> tuple[float, float]:
            width = float(np.linalg.norm(f[outer, :2] - f[inner, :2]))
            gap = float(np.mean(f[lower, 1] - f[upper, 1]))
            return gap / max(width, 1e-6), width

        gap_r, width_r = eye(_ER_U, _ER_L, ft.EYE_R_OUTER, ft.EYE_R_INNER)
        gap_l, width_l = eye(_EL_U, _EL_L, ft.EYE_L_OUTER, ft.EYE_L_INNER)
        iris = []
        for center, outer, inner, upper, lower, width in (
            (ft.IRIS_R_CENTER, ft.EYE_R_OUTER, ft.EYE_R_INNER, _ER_U, _ER_L, width_r),
            (ft.IRIS_L_CENTER, ft.EYE_L_OUTER, ft.EYE_L_INNER, _EL_U, _EL_L, width_l),
        ):
            mid = 0.5 * (f[outer, :2] + f[inner, :2])
            eye_mid_y = 0.5 * (f[upper, 1].mean() + f[lower, 1].mean())
            iris.append(((f[center, 0] - mid[0]) / (0.5 * width), (f[center, 1] - eye_mid_y) / (0.5 * width)))
        iris_arr = np.array(iris)
        return FaceFeatures(
            eye_gap_r=gap_r,
            eye_gap_l=gap_l,
            brow_height=float(f[_BROWS, 1].mean()),
            lip_gap=float(np.mean(f[_LIL, 1] - f[_LIU, 1])),
            chin_y=float(f[ft.CHIN, 1]),
            mouth_width=float(np.linalg.norm(f[ft.MOUTH_CORNER_L, :2] - f[ft.MOUTH_CORNER_R, :2])),
            corners_y=float(0.5 * (f[ft.MOUTH_CORNER_R, 1] + f[ft.MOUTH_CORNER_L, 1])),
            iris_x=float(iris_arr[:, 0].mean()),
            iris_y=float(iris_arr[:, 1].mean()),
        )


def relative_expression(current: FaceFeatures, reference: FaceFeatures) -> Expression:
    """Expression of ``current`` relative to ``reference`` (the driver's neutral)."""
    jaw = current.chin_y - reference.chin_y
    smile = reference.corners_y - current.corners_y + CORNER_JAW_FOLLOW * jaw
    width_change = (current.mouth_width - 2.0 * SMILE_WIDEN * smile) / max(reference.mouth_width, 1e-6) - 1.0
    mouth_round = float(np.clip(-width_change / ROUND_NARROWING, 0.0, 1.0))
    return Expression(
        eye_open_l=float(np.clip(current.eye_gap_l / max(reference.eye_gap_l, 0.05), 0.0, 2.0)),
        eye_open_r=float(np.clip(current.eye_gap_r / max(reference.eye_gap_r, 0.05), 0.0, 2.0)),
        brow_raise=reference.brow_height - current.brow_height,
        mouth_open=current.lip_gap - reference.lip_gap,
        mouth_width=width_change + ROUND_NARROWING * mouth_round,
        mouth_round=mouth_round,
        smile=smile,
        jaw=jaw,
        gaze_x=float(np.clip(current.iris_x - reference.iris_x, -1.0, 1.0)),
        gaze_y=float(np.clip(current.iris_y - reference.iris_y, -1.0, 1.0)),
    )
