"""The embedded renderer: warp the portrait crop from its own landmarks to the target landmarks.

The face mesh moves with the target; ring points (hair, ears, neck) follow the face oval's best-fit
affine motion (smooth, so they cannot fold against each other), damped with distance; the crop border stays put, so the
background does not move. Head rotation comes from the target landmarks, which the retargeter rotated in
3-D; triangles are drawn back to front so nearer parts hide farther ones. The mouth interior is
synthesized where the mouth opens beyond the portrait's own opening; eyelids close because the lid
points meet (see the rig).
"""

from __future__ import annotations

import numpy as np
from livepuppet.engine.clock import Clock, MonotonicClock
from livepuppet.engine.config import RenderConfig
from livepuppet.engine.face import topology as ft
from livepuppet.engine.render.mouth_interior import paint_mouth_interior
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import NUM_LANDMARKS, Target
from livepuppet.kernels.backend import KernelBackend, get_backend
from livepuppet.kernels.device_mesh_warp import DeviceMeshWarp
from livepuppet.kernels.mesh_warp import backward_map, refine_map, remap_bilinear, signed_areas, triangle_affines

_OVAL = np.array(ft.FACE_OVAL)
# Regions where lids and lips can close, which get an exact full-resolution map.
_DETAIL_REGIONS = (
    np.array(ft.EYE_R_UPPER + ft.EYE_R_LOWER + ft.EYE_R_UPPER_RING + ft.EYE_R_LOWER_RING),
    np.array(ft.EYE_L_UPPER + ft.EYE_L_LOWER + ft.EYE_L_UPPER_RING + ft.EYE_L_LOWER_RING),
    np.array(ft.LIP_OUTER_UPPER + ft.LIP_OUTER_LOWER),
)


def fit_affine_2d(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares affine map (2, 3) taking ``src (N, 2)`` to ``dst (N, 2)``."""
    a = np.concatenate([src, np.ones((len(src), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(a, dst.astype(np.float64), rcond=None)
    return sol.T


class MeshRenderer:
    """Per-portrait renderer; cheap to create once the source is prepared. Not thread-safe."""

    def __init__(self, source: PreparedSource, config: RenderConfig, clock: Clock | None = None,
                 backend: KernelBackend | None = None) -> None:
        """``backend`` overrides ``config.device`` (tests); "cpu" keeps the OpenCV path below unchanged."""
        self._clock = clock or MonotonicClock()
        self._source = source
        self._config = config
        self._src_points = source.mesh.points
        self._dst_points = source.mesh.points.copy()
        ring = source.mesh.ring_slice
        self._ring = ring
        self._ring_src = source.mesh.points[ring].astype(np.float64)
        self._ring_w = source.mesh.ring_weight.astype(np.float64)[:, None]
        self._oval_src = source.landmarks[_OVAL, :2].astype(np.float64)
        tris = source.mesh.triangles
        self._orientation = np.sign(signed_areas(self._src_points, tris))
        self._is_face_tri = np.all(tris < NUM_LANDMARKS, axis=1)
        self._depth = np.full(len(self._src_points), np.inf)  # ring and border: behind everything
        kernels = backend if backend is not None else get_backend(config.device)
        # On a device the exact full-resolution map and the sampling run in one pass; crop and mesh stay there.
        self._device = None if kernels.name == "cpu" else DeviceMeshWarp(kernels, source.crop, self._src_points, tris)


    def target_points(self, target: Target) -> np.ndarray:
        """All mesh vertex positions ``(P, 2) f32`` for ``target``: face, moved ring, fixed border."""
        dst = self._dst_points
        face = target.landmarks[:, :2]
        dst[:NUM_LANDMARKS] = face
        affine = fit_affine_2d(self._oval_src, face[_OVAL])
        moved = self._ring_src @ affine[:, :2].T + affine[:, 2]
        dst[self._ring] = self._ring_src + self._ring_w * (moved - self._ring_src)
        return dst

    def draw_order(self, target: Target, dst: np.ndarray) -> np.ndarray:
        """Triangles back to front (painter's algorithm): ring and border first, then face triangles
        that turned their back (where the head turns away: they fill the silhouette instead of folding
        over the face), then the facing ones by decreasing target depth, so the nose hides the cheek."""
        tris = self._source.mesh.triangles
        depth = self._depth
        depth[:NUM_LANDMARKS] = target.landmarks[:, 2]
        tri_depth = depth[tris].max(axis=1)
        area = signed_areas(dst, tris) * self._orientation
        facing = area > 0.0
        # Collapsed triangles (closed lids, closed lips) would still paint a line of the eye or mouth
        # interior: draw them first, so their neighbours' edges cover them.
        behind = ~self._is_face_tri | (np.abs(area) < 2.0)
        rank = np.where(behind, 0, np.where(facing, 2, 1))
        return np.lexsort((-tri_depth, rank))

    def render(self, target: Target, steps: list[tuple[str, int]] | None = None) -> np.ndarray:
        """The animated crop ``(S, S, 3) u8 RGB`` for ``target``. If ``steps`` is given, appends each
        step's duration in ns (target_points, draw_order, backward_map, refine_map, remap, mouth)."""
        now = self._clock.now_ns
        marks = [("start", now())]
        src = self._source
        size = src.crop_size
        dst = self.target_points(target)
        marks.append(("target_points", now()))
        order = self.draw_order(target, dst)
        marks.append(("draw_order", now()))
        tris = src.mesh.triangles
        if self._device is not None:  # map, refinement and remap in one device pass; "remap" holds it all
            marks.extend([("backward_map", now()), ("refine_map", now())])
            out = self._device.warp(dst, order)
            marks.append(("remap", now()))
        else:
            affines = triangle_affines(self._src_points, dst, tris)
            map_x, map_y = backward_map(self._src_points, dst, tris, (size, size), self._config.map_scale, order,
                                        affines)
            marks.append(("backward_map", now()))
            if self._config.map_scale < 1.0:
                boxes = []
                for region in _DETAIL_REGIONS:
                    pts = target.landmarks[region, :2]
                    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 3
                    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 4
                    boxes.append((int(x0), int(y0), int(x1), int(y1)))
                refine_map(map_x, map_y, dst, tris, affines, order, boxes)
            marks.append(("refine_map", now()))
            out = remap_bilinear(src.crop, map_x, map_y)
            marks.append(("remap", now()))
        if self._config.mouth_interior:
            paint_mouth_interior(out, target.landmarks, src.mouth, iod_px=src.pose.scale)
        marks.append(("mouth_interior", now()))
        if steps is not None:
            steps.extend((name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:]))
        return out
