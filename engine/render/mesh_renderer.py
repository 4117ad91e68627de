"""The embedded renderer: warp the portrait crop from its own landmarks to the target landmarks.

The face mesh moves with the target; ring points (hair, ears, neck, collar) take a share of the head's
motion that decays smoothly with distance (see :class:`WarpMesh`): next to the face, the nearby outline's
own motion (so the silhouette strip moves with the cheek it borders and shows no steps when the head
turns), farther out the outline's best-fit affine motion (smooth, so they cannot fold against each other);
the crop border stays put, so the background does not move. Near the outline the face's own motion is
low-passed (uneven tracked depths would cut a turned cheek into a sawtooth). Head rotation comes from the
target landmarks, which the retargeter rotated in 3-D; triangles are drawn back to front so nearer parts
hide farther ones. The mouth interior is
synthesized where the mouth opens beyond the portrait's own opening; eyelids close because the lid
points meet (see the rig).
"""

from __future__ import annotations

import numpy as np
from livepuppet.engine.clock import Clock, MonotonicClock
from livepuppet.engine.config import EngineConfig, RenderConfig
from livepuppet.engine.face import topology as ft
from livepuppet.engine.render.full_resolution import CropWarp
from livepuppet.engine.render.mouth_interior import paint_mouth_interior
from livepuppet.engine.source import PreparedSource
from livepuppet.engine.types import NUM_LANDMARKS, Target
from livepuppet.kernels import jit, jit_warp
from livepuppet.kernels.backend import KernelBackend, get_backend
from livepuppet.kernels.device_mesh_warp import DeviceMeshWarp
from livepuppet.kernels.draw_order import COLLAPSED_AREA, FACING, FOLDED, RING
from livepuppet.kernels.draw_order import draw_order as compiled_draw_order
from livepuppet.kernels.jit_warp import JitMeshWarp, use_jit_warp
from livepuppet.kernels.mesh_warp import backward_map, refine_map, remap_bilinear, signed_areas, triangle_affines

_OVAL = np.array(ft.FACE_OVAL)
_FEATURES = np.array(sorted(set(ft.EYE_R_UPPER + ft.EYE_R_LOWER + ft.EYE_L_UPPER + ft.EYE_L_LOWER
                                + ft.LIP_OUTER_UPPER + ft.LIP_OUTER_LOWER + ft.LIP_INNER_UPPER + ft.LIP_INNER_LOWER)))
BAND_WIDTH = 0.4  # inter-ocular units: the outline band whose motion is low-passed ...
BAND_SIGMA = 0.12  # ... by a Gaussian this wide, except within this of the chin's column:
BAND_CHIN_GAP = 0.5
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


def outline_band(landmarks: np.ndarray, iod_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The face points within :data:`BAND_WIDTH` of the face outline (eyes and lips excluded): their indices,
    how much of their motion is replaced by the local average (1 on the outline, 0 at the band's inner
    edge) and the row-normalized Gaussian averaging weights over the band (width :data:`BAND_SIGMA`)."""
    pts = landmarks[:, :2].astype(np.float64)
    oval = pts[_OVAL]
    a, b = oval, np.roll(oval, -1, axis=0)
    ab = b - a
    t = np.clip(np.einsum("pij,ij->pi", pts[:, None, :] - a[None], ab) / np.maximum((ab * ab).sum(1), 1e-9), 0, 1)
    dist = np.linalg.norm(pts[:, None, :] - (a[None] + t[..., None] * ab[None]), axis=2).min(axis=1) / iod_px
    dist[_OVAL] = 0.0
    dist[_FEATURES] = np.inf
    band = np.flatnonzero(dist < BAND_WIDTH)
    x = np.clip(dist[band] / BAND_WIDTH, 0.0, 1.0)
    blend = 1.0 - x * x * (3.0 - 2.0 * x)
    # Not under the chin, where the outline runs across (no turned silhouette there) and where the neck
    # takes its motion from the chin: averaging the jaw in would move the collar with a head that only grows.
    side = np.clip(np.abs(pts[band, 0] - pts[ft.CHIN, 0]) / (BAND_CHIN_GAP * iod_px), 0.0, 1.0)
    blend *= side * side * (3.0 - 2.0 * side)
    d2 = ((pts[band, None, :] - pts[None, band, :]) ** 2).sum(axis=2) / (iod_px * iod_px)
    mix = np.exp(-0.5 * d2 / (BAND_SIGMA * BAND_SIGMA))
    return band, blend[:, None], mix / mix.sum(axis=1, keepdims=True)


SETTLE_PX = 0.7  # ring motion below this many pixels is eased towards none


def settle(motion: np.ndarray) -> np.ndarray:
    """``motion (N, 2)`` with lengths under :data:`SETTLE_PX` eased smoothly (and monotonically) to 0: a
    fraction of a pixel of motion shows as nothing but bilinear blur, which would soften the collar and the
    background far from the head; left at exactly 0 they keep the portrait's own pixels."""
    length = np.linalg.norm(motion, axis=1, keepdims=True)
    t = np.clip(length / SETTLE_PX, 0.0, 1.0)
    return motion * (t * t * (3.0 - 2.0 * t))


def outline_mix(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Row-normalized weights ``(N, M)`` mixing the motion of ``outline (M, 2)`` points for each of
    ``points (N, 2)``: a Gaussian in distance whose width grows with the distance to the outline, so a
    point right next to the cheek moves with it and a farther one with a smooth average of a wider arc."""
    d2 = ((points[:, None, :] - outline[None, :, :]) ** 2).sum(axis=2)
    spacing = float(np.median(np.linalg.norm(np.diff(outline, axis=0), axis=1)))
    sigma2 = np.maximum(d2.min(axis=1, keepdims=True), spacing * spacing)
    w = np.exp(-0.5 * (d2 - d2.min(axis=1, keepdims=True)) / sigma2)
    return w / w.sum(axis=1, keepdims=True)


def warm_renderer(config: EngineConfig) -> None:
    """Compile the CPU warp now if ``config`` renders with it (start-up), so no session's first frame waits."""
    if config.render.renderer == "mesh" and config.render.device == "cpu" and use_jit_warp(config.render.cpu_warp):
        jit_warp.warm_up()
    if config.render.renderer == "mesh" and jit.available():
        tri = np.array([[0, 1, 2]], np.int32)
        compiled_draw_order(np.zeros((3, 2), np.float32), tri, np.zeros(3), np.ones(1), np.ones(1, bool))


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
        self._ring_local = source.mesh.ring_local.astype(np.float64)[:, None]
        self._ring_body = source.mesh.ring_body.astype(np.float64)[:, None]
        self._chin_src = source.landmarks[ft.CHIN, :2].astype(np.float64)
        self._band, self._band_blend, self._band_mix = outline_band(source.landmarks, source.pose.scale)
        self._band_src = source.landmarks[self._band, :2].astype(np.float64)
        self._ring_mix = outline_mix(self._ring_src, self._oval_src)
        tris = source.mesh.triangles
        self._orientation = np.sign(signed_areas(self._src_points, tris))
        self._is_face_tri = np.all(tris < NUM_LANDMARKS, axis=1)
        self._depth = np.full(len(self._src_points), np.inf)  # ring and border: behind everything
        self._compiled_order = jit.available()
        kernels = backend if backend is not None else get_backend(config.device)
        # On a device the exact full-resolution map and the sampling run in one pass; crop and mesh stay there.
        self._device = None if kernels.name == "cpu" else DeviceMeshWarp(kernels, source.crop, self._src_points, tris)
        # On the CPU the compiled warp computes that same exact map (the OpenCV path approximates it).
        self._jit = None
        if self._device is None and use_jit_warp(config.cpu_warp):
            self._jit = JitMeshWarp(source.crop, self._src_points, tris)
        self._last: tuple[np.ndarray | tuple[np.ndarray, np.ndarray], np.ndarray] | None = None

    @property
    def warp_path(self) -> str:
        """Which warp renders: "device", "jit" (compiled CPU) or "opencv"."""
        return "device" if self._device is not None else ("jit" if self._jit is not None else "opencv")


    def crop_warp(self) -> CropWarp | None:
        """How the last crop was drawn (its backward map, valid until the next render, and the target face),
        for a full-resolution paste-back; None before the first render and on a device (the map stays there)."""
        if self._last is None:
            return None
        drawn, face = self._last
        map_xy = drawn if isinstance(drawn, np.ndarray) else np.dstack(drawn)
        return CropWarp(map_xy=map_xy, face=face)

    def target_points(self, target: Target) -> np.ndarray:
        """All mesh vertex positions ``(P, 2) f32`` for ``target``: face, moved ring, fixed border."""
        dst = self._dst_points
        face = target.landmarks[:, :2]
        dst[:NUM_LANDMARKS] = face
        # Near the outline the motion is low-passed: neighbouring points there sit at uneven depths in the
        # tracked mesh, so a turned head would otherwise cut the cheek's edge into a sawtooth.
        band = self._band
        moved = face[band].astype(np.float64) - self._band_src
        dst[band] = self._band_src + (1.0 - self._band_blend) * moved + self._band_blend * (self._band_mix @ moved)
        oval = dst[_OVAL].astype(np.float64)
        affine = fit_affine_2d(self._oval_src, oval)
        fitted = self._ring_src @ affine[:, :2].T + affine[:, 2] - self._ring_src
        chin = face[ft.CHIN].astype(np.float64) - self._chin_src
        fitted += self._ring_body * (chin - fitted)
        nearby = self._ring_mix @ (oval - self._oval_src)
        motion = self._ring_local * nearby + (1.0 - self._ring_local) * fitted
        dst[self._ring] = self._ring_src + settle(self._ring_w * motion)
        return dst

    def draw_order(self, target: Target, dst: np.ndarray) -> np.ndarray:
        """Triangles back to front (painter's algorithm): face triangles that turned their back (where the
        head turns away the cheek folds over the outline) or collapsed, then the ring and border (so the
        background, not a sawtooth of folded skin, shows beyond the turned cheek), then the facing face
        triangles by decreasing target depth, so the nose hides the cheek. Compiled when Numba is there
        (:mod:`livepuppet.kernels.draw_order`), else the NumPy twin below."""
        tris = self._source.mesh.triangles
        depth = self._depth
        depth[:NUM_LANDMARKS] = target.landmarks[:, 2]
        if self._compiled_order:
            return compiled_draw_order(dst, tris, depth, self._orientation, self._is_face_tri)
        tri_depth = depth[tris].max(axis=1)
        area = signed_areas(dst, tris) * self._orientation
        facing = area > 0.0
        # Collapsed triangles (closed lids, closed lips) would still paint a line of the eye or mouth
        # interior: draw them first, so their neighbours' edges cover them.
        folded = self._is_face_tri & (~facing | (np.abs(area) < COLLAPSED_AREA))
        rank = np.where(folded, FOLDED, np.where(self._is_face_tri, FACING, RING))
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
            self._last = None
        elif self._jit is not None:  # exact at full resolution: nothing to refine; "remap" holds map and sampling
            marks.extend([("backward_map", now()), ("refine_map", now())])
            out = self._jit.warp(dst, order)
            marks.append(("remap", now()))
            self._last = (self._jit.map_xy, target.landmarks[:, :2])
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
            self._last = ((map_x, map_y), target.landmarks[:, :2])
        if self._config.mouth_interior:
            scale = target.head.scale
            paint_mouth_interior(out, target.landmarks, src.mouth, iod_px=src.pose.scale * scale, head_scale=scale)
        marks.append(("mouth_interior", now()))
        if steps is not None:
            steps.extend((name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:]))
        return out
