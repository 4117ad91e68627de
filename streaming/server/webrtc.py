"""Peer connections for sessions and viewers: one place that checks an SDP offer, answers it, and maps
whatever the WebRTC stack rejects to a :class:`BadOffer` (HTTP 400 with the reason). Also the process-wide
settings aiortc and aioice read from module globals, applied once when the server starts."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from livepuppet.engine.config import ServerConfig
from livepuppet.errors import InputError
from livepuppet.streaming.server.codec_tuning import tune_video_codecs
from livepuppet.streaming.server.ice import restrict_host_addresses

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024


class BadOffer(InputError):
    """The SDP offer cannot be used (HTTP 400 with this message)."""


def apply_process_settings(server: ServerConfig) -> None:
    """aiortc's encoder bitrates and aioice's host addresses are module globals: set them once, at start-up."""
    tune_video_codecs(server.video_bitrate)
    restrict_host_addresses(server.ice_addresses)


def check_offer_text(sdp: str, what: str = "SDP offer") -> None:
    """Cheap checks before anything is built for an offer."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise BadOffer(f"{what} larger than {MAX_SDP_BYTES} bytes")
    if "m=video" not in sdp:
        raise BadOffer(f"the {what} has no video (m=video) section: send a camera track, or for a talking head "
                       "ask to receive video")
    if not sdp.lstrip().startswith("v=0"):
        raise BadOffer(f"{what} must start with 'v=0' (an SDP session description)")


def new_peer() -> RTCPeerConnection:
    """A peer connection for loopback/LAN use (no STUN/TURN servers: the answer carries host candidates)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def answer_offer(pc: RTCPeerConnection, sdp: str, tracks: Sequence[MediaStreamTrack]) -> str:
    """Apply the client's offer, add our ``tracks`` and return the SDP answer. Any rejection by the stack
    (parse errors, no shared codec, bad direction, …) becomes a :class:`BadOffer`; the caller closes ``pc``."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for track in tracks:
            pc.addTrack(track)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
    except Exception as exc:  # aiortc raises many types on untrusted SDP (ValueError, OperationError, …)
        log.debug("offer rejected by the WebRTC stack: %r", exc)
        raise BadOffer(f"malformed SDP offer (rejected by the WebRTC stack): {type(exc).__name__}: {exc}"
                       .rstrip(": ")) from exc
    local = pc.localDescription
    if local is None:  # pragma: no cover - setLocalDescription succeeded
        raise BadOffer("no answer could be made for this offer")
    return str(local.sdp)
