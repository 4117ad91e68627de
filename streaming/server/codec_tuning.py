"""Video bitrate for aiortc's encoders.

aiortc starts VP8 at 500 kbit/s and caps it at 1.5 Mbit/s (H.264: 1 / 3 Mbit/s), which makes a 512² face
blocky. Its encoders read these module constants, so the server sets them once at start-up; the
congestion controller still lowers the rate when the network asks for it.
"""

from __future__ import annotations

from typing import Any, cast

from aiortc.codecs import h264, vpx


def tune_video_codecs(bitrate: int) -> None:
    """Start VP8/H.264 at ``bitrate`` bits/s and allow up to twice that."""
    for module in (vpx, h264):
        module = cast(Any, module)  # aiortc's modules define these constants; typing does not know
        module.DEFAULT_BITRATE = bitrate
        module.MAX_BITRATE = max(module.MAX_BITRATE, 2 * bitrate)
        module.MIN_BITRATE = min(module.MIN_BITRATE, bitrate)
