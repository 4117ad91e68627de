"""Protocol hardening at the server's edge: offers that used to get 201 (and hold a slot) or a 500 are 400s
with a reason and leave nothing behind; aiohttp's own errors are JSON; nested or oversized JSON is a 400;
per-client limits answer 429 with Retry-After; uploads are kept downscaled; a taken WebSocket port is named."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import time
from dataclasses import replace

import numpy as np
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection
from livepuppet.engine.config import EngineConfig
from livepuppet.errors import ConfigError
from livepuppet.streaming.protocol import CLOSE_REFUSED
from livepuppet.streaming.server.app import STATE_KEY, create_app, make_runner
from PIL import Image
from websockets.asyncio.client import connect

from tests.streaming.server.http_client import SDP, error_of, http


async def make_offer(video: str = "sendrecv", audio: str | None = None) -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction=video)
    if audio:
        pc.addTransceiver("audio", direction=audio)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


def raw_http(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes (requests no HTTP client would make) and read the answer to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionError:
            pass
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


MUTATIONS = {
    "no DTLS fingerprint": (lambda s: re.sub(r"a=fingerprint:[^\r\n]*\r\n", "", s), "a=fingerprint"),
    "bogus fingerprint": (lambda s: re.sub(r"(a=fingerprint:sha-256 )\S+", r"\1AB:CD:nope", s), "hex bytes"),
    "no rtpmap": (lambda s: re.sub(r"a=rtpmap:[^\r\n]*\r\n", "", s), "has no a=rtpmap"),
    "m=video 0": (lambda s: re.sub(r"m=video \d+", "m=video 0", s), "disabled (port 0)"),
    "no ICE password": (lambda s: re.sub(r"a=ice-pwd:[^\r\n]*\r\n", "", s), "a=ice-pwd"),
    "unknown codecs only": (lambda s: re.sub(r"(a=rtpmap:\d+ )\w+", r"\1NOPE", s), "no codec this server speaks"),
    "receive-only camera for a puppet": (lambda s: s.replace("a=sendrecv", "a=recvonly"), "needs sendrecv or sendonly"),
    "no DTLS setup": (lambda s: re.sub(r"a=setup:[^\r\n]*\r\n", "", s), "a=setup"),
    "bad setup role": (lambda s: s.replace("a=setup:actpass", "a=setup:actpaxs"), "a=setup must be one of"),
    "fmtp of a missing codec": (lambda s: s.replace("a=rtcp-mux\r\n", "a=rtcp-mux\r\na=fmtp:120 apt=1\r\n", 1),
                                "does not name a payload type"),
    "no direction": (lambda s: s.replace("a=sendrecv\r\n", ""), "direction attribute"),
    "BUNDLE of an unknown mid": (lambda s: s.replace("a=group:BUNDLE 0", "a=group:BUNDLE 7"), "BUNDLE"),
    "a candidate with a host name": (lambda s: re.sub(r"(a=candidate:\S+ \d \w+ \d+ )\S+", r"\1evil.example.com", s,
                                                      count=1), "not an IP address"),
    "a thousand media sections": (lambda s: s + s[s.index("m=video"):] * 1000, "larger than"),
    "twelve media sections": (lambda s: s + s[s.index("m=video"):] * 11, "media sections"),
}


def test_offers_that_cannot_work_are_400s_with_a_reason_and_hold_no_slot(server_factory, config) -> None:  # noqa: ANN001
    server = server_factory(config)
    base = server.base_url
    offer = asyncio.run(make_offer())
    assert http("POST", base + "/whip", offer.encode(), SDP)[0] == 201  # the unmutated offer is fine
    asyncio.run(asyncio.sleep(0))
    sessions = server.app[STATE_KEY].sessions
    for session_id in list(server.call(lambda: list(sessions._sessions))):  # type: ignore[call-overload]
        assert http("DELETE", f"{base}/whip/{session_id}")[0] == 200
    for name, (mutate, reason) in MUTATIONS.items():
        status, body, _ = http("POST", base + "/whip", mutate(offer).encode(), SDP)
        assert status == 400, (name, body)
        assert reason in error_of(body), (name, error_of(body))
    talk = asyncio.run(make_offer("sendonly"))
    status, body, _ = http("POST", base + "/whip?mode=talk", talk.encode(), SDP)
    assert status == 400 and "needs recvonly or sendrecv" in error_of(body)
    assert server.call(lambda: sessions.count) == 0
    assert http("GET", base + "/healthz")[0] == 200


def test_aiohttps_own_errors_are_json(server_factory, config) -> None:  # noqa: ANN001
    server = server_factory(config)
    base = server.base_url
    status, body, headers = http("GET", base + "/no/such/thing")
    assert status == 404 and "no such resource" in error_of(body)
    status, body, headers = http("PUT", base + "/whip", b"x")
    assert status == 405 and "not allowed" in error_of(body) and "POST" in headers.get("Allow", "")
    port = port_of(base)
    status, headers, body = raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n")
    assert status in (400, 431) and headers["content-type"].startswith("application/json")
    assert "bad HTTP request" in json.loads(body)["error"]
    broken_chunks = b"POST /whip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    status, headers, body = raw_http(port, broken_chunks)
    assert status == 400 and json.loads(body)["error"]
    limit = config.server.max_upload_bytes
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(limit // len(chunk) + 2)) + b"0\r\n\r\n"
    status, headers, body = raw_http(port, b"POST /api/portraits HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                           b"Connection: close\r\n\r\n" + chunks)
    assert status == 413 and str(limit) in json.loads(body)["error"]
    assert http("GET", base + "/healthz")[0] == 200


def test_nested_or_oversized_controls_are_400s(server_factory, config, face_frames) -> None:  # noqa: ANN001
    server = server_factory(config)
    base = server.base_url
    status, _, headers = http("POST", base + "/whip", asyncio.run(make_offer()).encode(), SDP)
    assert status == 201
    path = f"{base}/api/sessions/{headers['X-Session-Id']}"
    json_type = {"Content-Type": "application/json"}
    for body, reason in ((b"[" * 5000 + b"]" * 5000, "nested deeper"), (b'{"a": ' * 10 + b"1" + b"}" * 10,
                                                                             "nested deeper"),
                         (b'{"head_gain": 1, "x": "' + b"y" * 20_000 + b'"}', "at most"),
                         (b"\xff\xfe", "UTF-8"), (b"{", "must be JSON")):
        status, reply, _ = http("PATCH", path, body, json_type)
        assert status == 400 and reason in error_of(reply), (body[:20], reply[:200])
    assert http("PATCH", path, b'{"head_gain": 1.5}', json_type)[0] == 200
    assert http("DELETE", f"{base}/whip/{headers['X-Session-Id']}")[0] == 200


def test_per_client_limits_answer_429_with_retry_after(server_factory, config, portrait) -> None:  # noqa: ANN001
    limits = replace(config.server, session_rate_per_min=2.0, session_burst=2, upload_rate_per_min=1.0,
                     upload_burst=1)
    server = server_factory(replace(config, server=limits))
    base = server.base_url
    offer = asyncio.run(make_offer()).encode()
    created = []
    for _ in range(2):
        status, _, headers = http("POST", base + "/whip", offer, SDP)
        assert status == 201
        created.append(headers["X-Session-Id"])
    bad = re.sub(rb"a=fingerprint:[^\r\n]*\r\n", b"", offer)
    assert http("POST", base + "/whip", bad, SDP)[0] == 400  # a bad offer is refused before the limit counts
    status, body, headers = http("POST", base + "/whip", offer, SDP)
    assert status == 429 and "server.session_rate_per_min" in error_of(body)
    assert 1 <= int(headers["Retry-After"]) <= 30
    for session_id in created:
        http("DELETE", f"{base}/whip/{session_id}")
    buf = io.BytesIO()
    Image.fromarray(portrait).save(buf, format="JPEG")
    assert http("POST", base + "/api/portraits?name=a.jpg", buf.getvalue())[0] == 201
    status, body, headers = http("POST", base + "/api/portraits?name=b.jpg", buf.getvalue())
    assert status == 429 and "server.upload_rate_per_min" in error_of(body) and int(headers["Retry-After"]) >= 1

    async def frames_socket() -> tuple[dict, int | None]:  # the WebSocket's frames mode counts as a session
        port = server.call(lambda: server.app[STATE_KEY].audio_port)
        async with connect(f"ws://127.0.0.1:{port}/talk") as ws:
            first = json.loads(await ws.recv())
            await ws.wait_closed()
            return first, ws.close_code

    first, code = asyncio.run(frames_socket())
    assert first["type"] == "error" and first["code"] == "busy" and code == 4503


def test_limit_config_is_validated() -> None:
    from livepuppet.engine.config import ServerConfig

    for bad in ({"session_rate_per_min": -1.0}, {"session_burst": 0}, {"upload_rate_per_min": float("nan")},
                {"max_portrait_side": 10}):
        with pytest.raises(ConfigError, match="server."):
            ServerConfig(**bad)  # type: ignore[arg-type]


def test_large_uploads_are_kept_downscaled(server_factory, config, portrait) -> None:  # noqa: ANN001
    server = server_factory(config)
    big = np.asarray(Image.fromarray(portrait).resize((4000, 4000), Image.LANCZOS))
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="JPEG", quality=90)
    status, body, _ = http("POST", server.base_url + "/api/portraits?name=big.jpg", buf.getvalue())
    assert status == 201, body
    kept = server.app[STATE_KEY].portraits.get(json.loads(body)["id"]).source
    side = config.server.max_portrait_side
    assert max(kept.image.shape[:2]) == side  # 4000² → 1280²: 4.9 MB kept instead of 48 MB
    assert kept.crop.shape[:2] == (config.render.crop_size, config.render.crop_size)
    # The crop box still frames the face in the kept image: the paste-back region matches the crop.
    k = side / 4000
    default = server.app[STATE_KEY].portraits.default.source
    assert abs(kept.box.side - default.box.side * 4000 / 512 * k) < 3


def test_a_taken_websocket_port_is_named_with_its_setting(config, portrait) -> None:  # noqa: ANN001
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = replace(config, server=replace(config.server, port=0, ws_port=port))

        async def start() -> None:
            runner: web.AppRunner = make_runner(create_app(cfg, portrait))
            try:
                await runner.setup()
            finally:
                await runner.cleanup()

        with pytest.raises(ConfigError) as err:
            asyncio.run(start())
    message = str(err.value)
    assert f":{port} for the audio WebSocket" in message and "--ws-port" in message and "server.ws_port" in message
    by_default = EngineConfig().server
    assert by_default.audio_port == by_default.port + 1  # the message says so when ws_port is not set


def test_an_unknown_session_on_the_websocket_is_bad_session(server_factory, config) -> None:  # noqa: ANN001
    server = server_factory(config)
    port = server.call(lambda: server.app[STATE_KEY].audio_port)

    async def attach() -> tuple[dict, int | None]:
        async with connect(f"ws://127.0.0.1:{port}/talk?session=nope") as ws:
            first = json.loads(await ws.recv())
            await ws.wait_closed()
            return first, ws.close_code

    first, code = asyncio.run(attach())
    assert first == {"type": "error", "code": "bad_session", "message": first["message"]} and code == CLOSE_REFUSED


def test_a_valid_offer_whose_peer_never_connects_frees_its_slot(server_factory, config) -> None:  # noqa: ANN001
    """The offerer goes away after its offer (closed its peer, or ICE cannot get through): the session is
    ended after ``server.connect_timeout_s``, not left holding one of the few slots until the idle timeout."""
    server = server_factory(replace(config, server=replace(config.server, connect_timeout_s=1.0,
                                                           idle_timeout_s=120.0, max_sessions=1)))
    base = server.base_url
    status, _, headers = http("POST", base + "/whip", asyncio.run(make_offer()).encode(), SDP)
    assert status == 201
    session = f"{base}/api/sessions/{headers['X-Session-Id']}"
    assert http("POST", base + "/whip", asyncio.run(make_offer()).encode(), SDP)[0] == 503  # the one slot is held
    deadline = time.monotonic() + 10.0  # the reaper runs once a second on the server's real clock
    while http("GET", session)[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert http("GET", session)[0] == 404, "the never-connected session was not ended"
    status, _, headers = http("POST", base + "/whip", asyncio.run(make_offer()).encode(), SDP)
    assert status == 201, "the slot is free again"
    assert http("DELETE", f"{base}/whip/{headers['X-Session-Id']}")[0] == 200
