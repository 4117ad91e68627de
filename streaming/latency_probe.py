"""Frame ids stamped into pixels, to measure capture-to-avatar latency through real WebRTC.

The sender paints a frame's id as a strip of black/white cells in the top-left corner; a server started
with ``server.latency_probe = true`` copies that strip from each input frame onto the avatar frame it
produced, so the receiver knows which capture each avatar frame comes from. Cells are 16×16 px, which
survives VP8/H.264 at any sane bitrate.
"""

from __future__ import annotations

import numpy as np

CELL = 16
ID_BITS = 12  # ids wrap at 4096 frames (≈ 2 min at 30 fps): plenty for a measurement window
CHECK_BITS = 4
PROBE_ROWS = CELL
PROBE_COLS = CELL * (ID_BITS + CHECK_BITS)  # 256 px


def _check(frame_id: int) -> int:
    return (frame_id * 7 + 3) % (1 << CHECK_BITS)


def stamp_id(pixels: np.ndarray, frame_id: int) -> None:
    """Paint ``frame_id`` (mod 4096) into the top-left strip of ``pixels`` (H, W, 3) u8, in place."""
    frame_id %= 1 << ID_BITS
    bits = [(frame_id >> b) & 1 for b in range(ID_BITS)] + [(_check(frame_id) >> b) & 1 for b in range(CHECK_BITS)]
    for i, bit in enumerate(bits):
        pixels[:CELL, i * CELL:(i + 1) * CELL] = 255 if bit else 0


def read_id(pixels: np.ndarray) -> int | None:
    """The id stamped by :func:`stamp_id`, or None if the strip is missing or damaged."""
    if pixels.shape[0] < PROBE_ROWS or pixels.shape[1] < PROBE_COLS:
        return None
    centres = pixels[4:CELL - 4, :PROBE_COLS].reshape(CELL - 8, ID_BITS + CHECK_BITS, CELL, -1)[:, :, 4:CELL - 4]
    levels = centres.mean(axis=(0, 2, 3))
    if np.any(np.abs(levels - 127.5) < 60):  # a cell that is neither black nor white: no probe here
        return None
    bits = (levels > 127.5).astype(int)
    frame_id = int(sum(int(b) << i for i, b in enumerate(bits[:ID_BITS])))
    check = int(sum(int(b) << i for i, b in enumerate(bits[ID_BITS:])))
    return frame_id if check == _check(frame_id) else None


def copy_probe(src: np.ndarray, dst: np.ndarray) -> None:
    """Copy the probe strip from an input frame onto the output frame made from it."""
    rows, cols = min(PROBE_ROWS, src.shape[0], dst.shape[0]), min(PROBE_COLS, src.shape[1], dst.shape[1])
    dst[:rows, :cols] = src[:rows, :cols]
