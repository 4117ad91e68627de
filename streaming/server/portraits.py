"""Portraits a server can animate: the one it started with plus uploads, each prepared once and shared.

Preparing (face detection, crop, mesh) is the slow once-per-portrait step; sessions then reuse the
:class:`PreparedSource` read-only. Uploads are kept in memory, oldest evicted beyond a cap.
"""

from __future__ import annotations

import io
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.pipeline import open_portrait
from livepuppet.engine.source import PreparedSource, shrink_source
from livepuppet.errors import InputError
from PIL import Image

THUMBNAIL_SIDE = 160


@dataclass(frozen=True, slots=True)
class Portrait:
    """A prepared portrait and what the page shows of it."""

    id: str
    name: str
    source: PreparedSource
    thumbnail_jpeg: bytes

    @property
    def crop(self) -> np.ndarray:
        return self.source.crop


class UnknownPortrait(InputError):
    """No portrait has this id (expired, or never uploaded)."""


class PortraitStore:
    """Thread-safe registry of prepared portraits; ids are unguessable tokens (bundled ones are named)."""

    def __init__(self, config: EngineConfig, capacity: int) -> None:
        self._config = config
        self._capacity = capacity
        self._items: OrderedDict[str, Portrait] = OrderedDict()
        self._pinned: set[str] = set()
        self._lock = threading.Lock()

    def add(self, image: np.ndarray, name: str, portrait_id: str | None = None, pinned: bool = False) -> Portrait:
        """Prepare ``image`` (blocking, ≈0.1–1 s; run it off the event loop). Raises :class:`NoFaceError`."""
        source = shrink_source(open_portrait(image, self._config), self._config.server.max_portrait_side)
        portrait = Portrait(id=portrait_id or secrets.token_urlsafe(12), name=name[:80], source=source,
                            thumbnail_jpeg=_thumbnail(source.crop))
        with self._lock:
            self._items[portrait.id] = portrait
            if pinned:
                self._pinned.add(portrait.id)
            while len(self._items) > self._capacity + len(self._pinned):
                oldest = next(k for k in self._items if k not in self._pinned)
                del self._items[oldest]
        return portrait

    def get(self, portrait_id: str) -> Portrait:
        with self._lock:
            try:
                return self._items[portrait_id]
            except KeyError:
                raise UnknownPortrait(f"no portrait {portrait_id!r}: upload one or pick from /api/portraits") from None

    def list(self) -> list[Portrait]:
        with self._lock:
            return list(self._items.values())

    @property
    def default(self) -> Portrait:
        with self._lock:
            if not self._items:
                raise UnknownPortrait("the server has no portrait yet")
            return next(iter(self._items.values()))


def _thumbnail(crop: np.ndarray) -> bytes:
    image = Image.fromarray(crop)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85)
    return buf.getvalue()
