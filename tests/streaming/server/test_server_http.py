"""The server's HTTP edge: bad requests get a clear 4xx and the server keeps serving; auth, origin,
uploads, the session cap, /healthz and /metrics."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace

import numpy as np
import pytest
from livepuppet.engine.config import EngineConfig
from livepuppet.streaming.clients.whip_client import ArrayVideoTrack, whip_close, whip_connect
from PIL import Image

from tests.streaming.server.http_client import SDP, error_of, http


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


async def one_session(base: str, frames: list[np.ndarray], token: str = "", portrait: str | None = None) -> int:
    track = ArrayVideoTrack(30, frames, count=30)
    session = await whip_connect(base, track, token=token, portrait=portrait)
    await asyncio.wait_for(session.first_frame.wait(), 20)
    return await whip_close(base, session, token=token)


def test_bad_signalling_gets_4xx_and_the_server_keeps_serving(server_factory, config, face_frames) -> None:
    server = server_factory(config)
    base = server.base_url
    status, body, _ = http("POST", base + "/whip", b"garbage", SDP)
    assert status == 400 and "m=video" in error_of(body)
    status, body, _ = http("POST", base + "/whip", b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", SDP)
    assert status == 400 and "no 'o=' line" in error_of(body)
    status, body, _ = http("POST", base + "/whip", b"\xff\xfe\x00m=video", SDP)
    assert status == 400
    status, body, _ = http("POST", base + "/whip", b"v=0", {"Content-Type": "text/plain"})
    assert status == 415 and "application/sdp" in error_of(body)
    status, body, _ = http("POST", base + "/whip?mode=karaoke", b"v=0\r\nm=video 9", SDP)
    assert status == 400 and "unknown session mode" in error_of(body)
    status, body, _ = http("POST", base + "/whip?portrait=nope", b"v=0\r\nm=video 9", SDP)
    assert status == 404 and "no portrait" in error_of(body)
    for method, path in (("DELETE", "/whip/unknown"), ("GET", "/api/sessions/unknown"),
                         ("PATCH", "/whip/unknown"), ("PATCH", "/api/sessions/unknown")):
        status, body, _ = http(method, base + path, b"{}", {"Content-Type": "application/json"})
        assert status == 404 and "no such session" in error_of(body), (method, path)
    # Still serving: a real session streams, and health says so.
    assert asyncio.run(one_session(base, face_frames)) == 200
    status, body, _ = http("GET", base + "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body, _ = http("GET", base + "/metrics")
    text = body.decode()
    assert status == 200 and 'livepuppet_http_errors_total{status="404"}' in text
    assert 'livepuppet_stage_seconds_count{stage="render"}' in text
    assert 'livepuppet_sessions_started_total{kind="puppet"} 1.0' in text


def test_token_and_origin_are_enforced(server_factory, config, face_frames) -> None:
    cfg = replace(config, server=replace(config.server, token="s3cret", allowed_origins=("https://app.example",)))
    base = server_factory(cfg).base_url
    for path in ("/api/portraits", "/metrics", "/api/info"):
        status, _, headers = http("GET", base + path)
        assert status == 401 and headers.get("WWW-Authenticate") == "Bearer", path
        assert http("GET", base + path, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert http("GET", base + path, headers={"Authorization": "Bearer s3cret"})[0] == 200
    assert http("POST", base + "/whip", b"v=0", {**SDP, "Authorization": "Bearer nope"})[0] == 401
    assert http("GET", base + "/healthz")[0] == 200 and http("GET", base + "/")[0] == 200  # public
    auth = {"Authorization": "Bearer s3cret"}
    status, body, _ = http("GET", base + "/api/info", headers={**auth, "Origin": "https://evil.example"})
    assert status == 403 and "not allowed" in error_of(body)
    assert http("GET", base + "/api/info", headers={**auth, "Origin": "https://app.example"})[0] == 200
    assert http("GET", base + "/api/info", headers={**auth, "Origin": base})[0] == 200  # same origin
    with pytest.raises(RuntimeError, match="401"):
        asyncio.run(one_session(base, face_frames))
    assert asyncio.run(one_session(base, face_frames, token="s3cret")) == 200


def test_uploads_are_checked(server_factory, config, portrait) -> None:
    cfg = replace(config, server=replace(config.server, max_upload_bytes=400_000, max_upload_pixels=2_000_000))
    base = server_factory(cfg).base_url
    status, body, _ = http("POST", base + "/api/portraits", b"\x00" * 500_000)
    assert status == 413
    status, body, _ = http("POST", base + "/api/portraits", b"GIF89a" + b"\x00" * 100)
    assert status == 400 and "not a JPEG, PNG or WebP" in error_of(body)
    status, body, _ = http("POST", base + "/api/portraits", png_bytes(np.zeros((1600, 1600, 3), np.uint8)))
    assert status == 400 and "MP" in error_of(body)  # 2.56 MP > 2 MP, refused before decoding
    status, body, _ = http("POST", base + "/api/portraits", jpeg_bytes(np.full((256, 256, 3), 128, np.uint8)))
    assert status == 422 and "face" in error_of(body).lower()
    status, body, _ = http("POST", base + "/api/portraits", jpeg_bytes(portrait)[:5000])
    assert status == 400  # truncated
    status, body, _ = http("POST", base + "/api/portraits?name=me.jpg", jpeg_bytes(portrait))
    assert status == 201
    item = json.loads(body)
    assert len(item["id"]) >= 16 and item["name"] == "me.jpg"
    listed = json.loads(http("GET", base + "/api/portraits")[1])["portraits"]
    assert {p["id"] for p in listed} == {"default", item["id"]}
    status, thumb, headers = http("GET", base + item["thumbnail"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and thumb[:3] == b"\xff\xd8\xff"


def test_session_cap_and_controls(server_factory, config, face_frames) -> None:
    cfg = replace(config, server=replace(config.server, max_sessions=1))
    base = server_factory(cfg).base_url

    async def scenario() -> None:
        first = await whip_connect(base, ArrayVideoTrack(30, face_frames, loop=True))
        await asyncio.wait_for(first.first_frame.wait(), 20)
        with pytest.raises(RuntimeError, match="503"):
            await whip_connect(base, ArrayVideoTrack(30, face_frames, loop=True))
        url = f"{base}/api/sessions/{first.session_id}"
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, lambda: http("PATCH", url, b'{"mouth_gain": 2.0, "reset_neutral": true}',
                                                           {"Content-Type": "application/json"}))
        assert ok[0] == 200
        bad = await loop.run_in_executor(None, lambda: http("PATCH", url, b'{"mouth_gain": 99}',
                                                            {"Content-Type": "application/json"}))
        assert bad[0] == 400 and "out of range" in error_of(bad[1])
        notjson = await loop.run_in_executor(None, lambda: http("PATCH", url, b"{nope",
                                                                {"Content-Type": "application/json"}))
        assert notjson[0] == 400
        await asyncio.sleep(0.5)
        info = json.loads((await loop.run_in_executor(None, lambda: http("GET", url)))[1])
        assert info["frames_out"] > 5 and info["errors"] == 0 and info["state"] == "connected"
        assert await whip_close(base, first) == 200
        await one_session(base, face_frames)  # the slot is free again

    asyncio.run(scenario())


def test_exposed_server_needs_a_token(config: EngineConfig) -> None:
    from livepuppet.errors import ConfigError
    from livepuppet.streaming.server.app import check_exposure

    with pytest.raises(ConfigError, match="--token"):
        check_exposure(replace(config, server=replace(config.server, host="0.0.0.0")))
    check_exposure(replace(config, server=replace(config.server, host="0.0.0.0", token="t")))
    check_exposure(config)  # loopback needs none
