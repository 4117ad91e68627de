"""Reading portraits: any photo PIL opens (JPEG, PNG, WebP, TIFF, …) → ``(H, W, 3) u8 RGB``.

Odd formats are normalised instead of misread: 16-bit and 32-bit grayscale are scaled to 8 bits (PIL's own
``convert("RGB")`` clips them to white), alpha is composited over white, palettes and CMYK are converted.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from livepuppet.errors import InputError
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # larger portraits are refused before decoding (decompression bombs, memory)
MIN_SIDE = 64
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # JPEG, PNG (WebP: RIFF....WEBP)


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> np.ndarray:
    """Decode an image file → ``(H, W, 3) u8 RGB`` (EXIF orientation applied)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"portrait {p} does not exist")
    return _decode(p, str(p), max_pixels, min_side)


def decode_image(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS,
                 min_side: int = MIN_SIDE) -> np.ndarray:
    """Decode an uploaded JPEG, PNG or WebP → ``(H, W, 3) u8 RGB``. The type is sniffed from the bytes
    (never trusted from a name or header) and the size checked before any pixel is decoded."""
    if not any(data.startswith(magic) for magic in IMAGE_MAGIC) and not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        raise InputError(f"{name} is not a JPEG, PNG or WebP image")
    return _decode(io.BytesIO(data), name, max_pixels, min_side)


def _decode(file: Path | io.BytesIO, name: str, max_pixels: int, min_side: int) -> np.ndarray:
    try:
        with Image.open(file) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise InputError(f"portrait {name} is {w}×{h} = {w * h / 1e6:.0f} MP; the limit is "
                                 f"{max_pixels / 1e6:.0f} MP: downscale it first")
            if min(w, h) < min_side:
                raise InputError(f"portrait {name} is {w}×{h}: too small, it needs at least {min_side} px per side")
            img.load()
            return to_rgb8(ImageOps.exif_transpose(img))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name} is not a readable image ({type(exc).__name__}): use a JPEG, PNG or WebP "
                         "photo") from exc


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Any PIL image → ``(H, W, 3) u8 RGB``: high bit depths scaled, alpha composited over white."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        gray = _gray_to_u8(np.asarray(img), mode)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        rgb = rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8))
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _gray_to_u8(values: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit integer or float gray → u8: 16-bit range for integers beyond 8 bits, [0, 1] for floats."""
    v = values.astype(np.float64)
    if mode == "F":
        top = float(np.nanmax(v)) if v.size else 1.0
        scale = 255.0 if top <= 1.0 else (1.0 if top <= 255.0 else 255.0 / 65535.0)
    elif mode.startswith("I;16") or float(v.max(initial=0.0)) > 255.0:
        scale = 255.0 / 65535.0
    else:
        scale = 1.0
    return np.clip(np.round(np.nan_to_num(v) * scale), 0, 255).astype(np.uint8)
