"""Peer connections for sessions and viewers: one place that checks an SDP offer, answers it, and maps
whatever the WebRTC stack rejects to a :class:`BadOffer` (HTTP 400 with the reason). Also the process-wide
settings aiortc and aioice read from module globals, applied once when the server starts."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from livepuppet.engine.config import ServerConfig
from livepuppet.streaming.jitter_recovery import install_jitter_recovery
from livepuppet.streaming.server.codec_tuning import tune_video_codecs
from livepuppet.streaming.server.ice import restrict_host_addresses
from livepuppet.streaming.server.sdp_check import MAX_SDP_BYTES, BadOffer, check_offer

log = logging.getLogger(__name__)

__all__ = ["MAX_SDP_BYTES", "BadOffer", "answer_offer", "apply_process_settings", "check_offer_text", "close_peer",
           "new_peer"]


def apply_process_settings(server: ServerConfig) -> None:
    """aiortc's encoder bitrates, its receivers' jitter buffer and aioice's host addresses are module globals:
    set them once, at start-up."""
    tune_video_codecs(server.video_bitrate)
    restrict_host_addresses(server.ice_addresses)
    install_jitter_recovery()  # webcam streams recover from lost packets in a round trip, not after 512 more


def check_offer_text(sdp: str, what: str = "SDP offer", mode: str = "puppet") -> None:
    """Every check that needs no peer connection (:func:`~livepuppet.streaming.server.sdp_check.check_offer`):
    grammar, ICE credentials, DTLS fingerprint and setup, codecs, a usable video section whose direction suits
    ``mode`` (puppet, echo, talk; ``view`` for WHEP), BUNDLE."""
    check_offer(sdp, what, mode)


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


async def close_peer(pc: RTCPeerConnection) -> None:
    """Close ``pc`` and everything it started, even one that a rejected description left half-built.
    aiortc's ``close()`` stops at the first transceiver without a transport, leaving ICE transports (and their
    tasks) running; those are stopped here one by one."""
    try:
        await pc.close()
    except Exception as exc:  # aiortc's close() trips over its own half-applied state
        log.debug("peer connection close failed (%r); stopping its transports one by one", exc)
        for transport in list(getattr(pc, "_RTCPeerConnection__dtlsTransports", ())):
            with contextlib.suppress(Exception):
                await transport.stop()
        for ice in list(getattr(pc, "_RTCPeerConnection__iceTransports", ())):
            with contextlib.suppress(Exception):
                await ice.stop()
    pc.remove_all_listeners()
