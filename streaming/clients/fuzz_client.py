"""A seeded protocol fuzzer for a running livepuppet server: mutated real SDP offers (made by aiortc), raw
HTTP requests (methods, paths, headers, bodies, content types, chunked and oversized) and WebSocket message
sequences (binary and text, mutated JSON, start/end/interrupt out of order).

Every case must be *answered*: an HTTP status below 500 (a 4xx with a JSON body), or on the WebSocket an
``interrupted`` reply to a final probe, a documented error code, or a documented close code. Anything
else (a 5xx, a plain-text error, no answer, an undocumented close) is recorded as a failure. Used by
``tests/streaming/server/test_fuzz.py`` (a short slice) and ``bench/fuzz_server.py`` (the long run).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ERROR_CODES = frozenset({"not_started", "bad_audio", "bad_json", "bad_message", "bad_sample_rate", "bad_format",
                         "bad_emotion", "bad_intensity", "unknown_type", "buffer_full", "bad_session", "bad_portrait",
                         "bad_request", "busy"})
CLOSE_CODES = frozenset({1000, 1009, 4000, 4400, 4503})  # normal, too big, ended, refused, busy
CASE_TIMEOUT_S = 30.0
_INTERESTING = ["", "0", "-1", "65536", "99999999999", "x", " ", ":", "/", "\t", "%00", "é", "\U0001f600",
                "A" * 300, "sha-256", "inactive", "recvonly", "sendonly", "IN IP4 999.1.1.1", "*"]
_PATHS = ["/", "/healthz", "/metrics", "/api/info", "/api/portraits", "/api/portraits/default/thumbnail.jpg",
          "/api/portraits/nope/thumbnail.jpg", "/whip", "/whip/abc", "/whep/abc", "/whep/abc/def",
          "/api/sessions/abc", "/static/app.js", "/static/../../etc/passwd", "/%2e%2e/%2e%2e", "/nope",
          "/whip?mode=talk", "/whip?portrait=%00", "/api/portraits?name=" + "n" * 500, "/" + "a" * 3000]
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "FOO"]
_ROUTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
_TYPES = ["application/sdp", "application/json", "text/plain", "image/jpeg", "multipart/form-data; boundary=x",
          "application/x-www-form-urlencoded", "application/sdp; charset=utf-16", "", "*/*"]


@dataclass
class FuzzReport:
    """What a block of cases got back."""

    cases: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # "http 400", "ws interrupted", "ws close 1009", …
    failures: list[str] = field(default_factory=list)
    created: int = 0  # offers the server accepted (each was closed again)

    def add(self, other: FuzzReport) -> None:
        self.cases += other.cases
        self.answers.update(other.answers)
        self.failures.extend(other.failures)
        self.created += other.created


async def real_offers() -> list[str]:
    """Offers as aiortc makes them: camera send/receive with audio, receive-only (talk, WHEP), video only."""
    offers = []
    for video, audio in (("sendrecv", "recvonly"), ("recvonly", "recvonly"), ("sendrecv", None), ("recvonly", None)):
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction=video)
        if audio:
            pc.addTransceiver("audio", direction=audio)
        await pc.setLocalDescription(await pc.createOffer())
        offers.append(pc.localDescription.sdp)
        await pc.close()
    return offers


class ServerFuzzer:
    """Runs seeded cases against ``host:port`` (HTTP) and ``ws_port`` (the audio WebSocket)."""

    def __init__(self, host: str, port: int, ws_port: int, offers: list[str], seed: int,
                 frames_share: float = 0.25) -> None:
        self._host = host
        self._port = port
        self._ws_port = ws_port
        self._offers = offers
        self._rng = random.Random(seed)
        self._frames_share = frames_share  # WebSocket cases that open a frames-mode session (costly)

    async def run(self, count: int) -> FuzzReport:
        """``count`` cases, mixed: 45 % SDP offers, 35 % HTTP requests, 20 % WebSocket sequences."""
        report = FuzzReport()
        for _ in range(count):
            pick = self._rng.random()
            name = "sdp" if pick < 0.45 else "http" if pick < 0.8 else "ws"
            case = {"sdp": self._sdp_case, "http": self._http_case, "ws": self._ws_case}[name]
            index = report.cases
            report.cases += 1
            try:
                await asyncio.wait_for(case(report), CASE_TIMEOUT_S)
            except (TimeoutError, asyncio.TimeoutError):
                report.failures.append(f"case {index} ({name}): no answer within {CASE_TIMEOUT_S:.0f} s")
            except (OSError, ConnectionError) as exc:
                report.failures.append(f"case {index} ({name}): connection failed: {exc!r}")
        return report

    # -- SDP ---------------------------------------------------------------------------------------------------

    def mutate_offer(self, sdp: str) -> str:
        """One to four mutations of a real offer: line-level, token-level, byte-level or semantic."""
        rng = self._rng
        lines = sdp.strip().split("\r\n")
        for _ in range(rng.randint(1, 4)):
            if not lines:
                break
            op = rng.random()
            i = rng.randrange(len(lines))
            if op < 0.2:
                del lines[i]
            elif op < 0.3:
                lines.insert(i, lines[rng.randrange(len(lines))])
            elif op < 0.5:
                bits = lines[i].split(" ")
                j = rng.randrange(len(bits))
                bits[j] = rng.choice(_INTERESTING) if rng.random() < 0.7 else bits[j][: rng.randrange(len(bits[j]) + 1)]
                lines[i] = " ".join(bits)
            elif op < 0.6 and lines[i]:
                j = rng.randrange(len(lines[i]))
                lines[i] = lines[i][:j] + chr(rng.choice([0, 9, 13, 32, 58, 61, 127, 0xE9, 0x1F600])) + lines[i][j + 1:]
            elif op < 0.7:
                lines[i], lines[-1] = lines[-1], lines[i]
            else:
                lines = self._semantic(lines)
        return "\r\n".join(lines) + ("\r\n" if rng.random() < 0.8 else "")

    def _semantic(self, lines: list[str]) -> list[str]:
        """The mutations a broken client or an attacker would make on purpose."""
        rng = self._rng
        choice = rng.randrange(9)
        if choice == 0:
            return [ln for ln in lines if not ln.startswith("a=fingerprint")]
        if choice == 1:
            return [re.sub(r"(a=fingerprint:\S+ )\S+", r"\1" + rng.choice(["zz:zz", "AB", "00" * 40, "sha"]), ln)
                    for ln in lines]
        if choice == 2:
            return [re.sub(r"^m=video \d+", "m=video 0", ln) for ln in lines]
        if choice == 3:
            return [ln for ln in lines if not ln.startswith("a=rtpmap")]
        if choice == 4:
            d = rng.choice(["a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv"])
            return [d if ln in ("a=sendrecv", "a=recvonly", "a=sendonly") else ln for ln in lines]
        if choice == 5:
            return [re.sub(r"(a=rtpmap:\d+ )\w+", r"\1" + rng.choice(["NOPE", "VP9", "AV1", "H265"]), ln)
                    for ln in lines]
        if choice == 6:
            return [ln for ln in lines if not ln.startswith(("a=ice-ufrag", "a=ice-pwd"))]
        if choice == 7:
            media = [i for i, ln in enumerate(lines) if ln.startswith("m=")]
            return lines + lines[media[0]:] * rng.randint(1, 12) if media else lines
        return [ln for ln in lines if not ln.startswith(rng.choice(["a=mid", "a=setup", "a=rtcp-mux", "a=group",
                                                                      "c=", "t=", "o="]))]

    async def _sdp_case(self, report: FuzzReport) -> None:
        rng = self._rng
        body = self.mutate_offer(rng.choice(self._offers)) if rng.random() < 0.9 else rng.choice(self._offers)
        data = body.encode("utf-8", "surrogatepass")
        if rng.random() < 0.05:
            data = data[: rng.randrange(len(data))] + bytes([0xFF, 0xFE]) + data[rng.randrange(len(data)):]
        mode = rng.choice(["puppet", "puppet", "echo", "talk", "talk", "view", "karaoke"])
        path = "/whep/nope" if mode == "view" else f"/whip?mode={mode}"
        status, headers, reply = await self._request("POST", path, {"Content-Type": "application/sdp"}, data)
        self._judge(report, "POST " + path, status, headers, reply)
        if status == 201:
            report.created += 1
            location = headers.get("location", "")
            if location:
                status, headers, reply = await self._request("DELETE", location, {}, b"")
                self._judge(report, "DELETE " + location, status, headers, reply)

    # -- HTTP --------------------------------------------------------------------------------------------------

    async def _http_case(self, report: FuzzReport) -> None:
        rng = self._rng
        kind = rng.randrange(10)
        if kind < 6:  # well-formed request line, odd everything else
            method = rng.choice(_METHODS)
            path = rng.choice(_PATHS)
            headers = {}
            if rng.random() < 0.7:
                headers["Content-Type"] = rng.choice(_TYPES)
            if rng.random() < 0.2:
                headers["Origin"] = rng.choice(["http://evil.example", "null", "http://127.0.0.1:1"])
            if rng.random() < 0.2:
                headers["Authorization"] = rng.choice(["Bearer x", "Basic Zm9v", "Bearer " + "t" * 2000])
            if rng.random() < 0.1:
                headers["X-Big"] = "b" * rng.choice([100, 9000, 20000])  # over aiohttp's 8190-byte line limit
            body = self._body()
            if method in ("GET", "HEAD") and rng.random() < 0.7:
                body = b""
            chunked = rng.random() < 0.15
            status, got, reply = await self._request(method, path, headers, body, chunked=chunked)
            if status == 0 and method not in _ROUTED_METHODS and len(body) > 1_000_000:
                # aiohttp refuses the request line (400) and closes while the big body is still coming: the
                # reset can overtake the answer. Documented: docs/protocol.md (HTTP errors).
                report.answers["http reset (refused request, body still coming)"] += 1
                return
            shape = f"{len(body)} B{' chunked' if chunked else ''}{' +big header' if 'X-Big' in headers else ''}"
            self._judge(report, f"{method} {path[:60]} ({shape})", status, got, reply, head=method == "HEAD")
        elif kind < 8:  # JSON at the controls endpoint, for an unknown session (404) or as deep/huge documents
            body = self._json_body().encode("utf-8", "surrogatepass")
            json_type = {"Content-Type": "application/json"}
            status, got, reply = await self._request("PATCH", "/api/sessions/nope", json_type, body)
            self._judge(report, "PATCH controls", status, got, reply)
        else:  # raw bytes where a request should be
            raw = rng.choice([b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                              b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                              b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(40),  # TLS hello
                              b"POST /whip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                              b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                              b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
                              b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                              b"POST /api/portraits HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"])
            status, got, reply = await self._exchange(raw)
            if status == 0 and not reply:
                report.answers["http closed"] += 1  # refused at the TLS/garbage level: closed without an answer
                return
            self._judge(report, f"raw {raw[:30]!r}", status, got, reply)

    def _body(self) -> bytes:
        rng = self._rng
        kind = rng.randrange(6)
        if kind == 0:
            return b""
        if kind == 1:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000)))
        if kind == 2:
            return self._json_body().encode("utf-8", "surrogatepass")
        if kind == 3:
            return b"\xff\xd8\xff" + bytes(rng.randrange(256) for _ in range(500))  # a "JPEG" that is not one
        if kind == 4:
            return b"x" * rng.choice([10_000, 200_000, 11_000_000])  # the last is over server.max_upload_bytes
        return rng.choice(self._offers).encode()

    def _json_body(self) -> str:
        rng = self._rng
        kind = rng.randrange(6)
        if kind == 0:
            depth = rng.choice([5, 50, 5000, 100_000])
            return "[" * depth + "]" * depth
        if kind == 1:
            return "{" + ",".join(f'"k{i}": {i}' for i in range(rng.choice([10, 3000]))) + "}"
        if kind == 2:
            return json.dumps({"head_gain": rng.choice([1, -1, 1e308, "x", None, True, [1]]),
                               rng.choice(["smoothing", "nope", "reset_neutral"]): rng.choice([0.5, 9, "y"])})
        if kind == 3:
            return '{"a": ' * 20 + "1" + "}" * 20
        if kind == 4:
            return rng.choice(["", "nul", '{"a":', "\ud800", "1e99999", "NaN", '"' + "s" * 5000 + '"'])
        return json.dumps({"head_gain": round(rng.uniform(0, 3), 2)})

    async def _request(self, method: str, path: str, headers: dict[str, str], body: bytes,
                       chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
            payload = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in _chunks(body, 4096)) + b"0\r\n\r\n"
        else:
            lines.append(f"Content-Length: {len(body)}")
            payload = body
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass")
        return await self._exchange(head + payload)

    async def _exchange(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send ``raw``, read the answer until the server closes: (status, lower-cased headers, body)."""
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            writer.write(raw)
            try:
                await writer.drain()
            except ConnectionError:
                pass  # the server answered (e.g. 413) and closed before taking the whole body
            data = b""
            try:
                while chunk := await reader.read(65536):
                    data += chunk
            except ConnectionError:
                pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
        head, _, body = data.partition(b"\r\n\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        if m is None:
            return 0, {}, data
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(m.group(1)), headers, body

    def _judge(self, report: FuzzReport, what: str, status: int, headers: dict[str, str], body: bytes,
               head: bool = False) -> None:
        report.answers[f"http {status}"] += 1
        if status == 0:
            report.failures.append(f"{what}: no HTTP answer ({body[:60]!r})")
        elif status >= 500:
            report.failures.append(f"{what}: {status} {body[:200]!r}")
        elif status >= 400 and not head:
            if "application/json" not in headers.get("content-type", ""):
                report.failures.append(f"{what}: {status} is not JSON ({headers.get('content-type')}): {body[:80]!r}")
            elif b'"error"' not in body and b"chunked" not in headers.get("transfer-encoding", "").encode():
                report.failures.append(f"{what}: {status} without an error message: {body[:80]!r}")

    # -- WebSocket ---------------------------------------------------------------------------------------------

    async def _ws_case(self, report: FuzzReport) -> None:
        rng = self._rng
        frames = rng.random() < self._frames_share
        query = "" if frames else rng.choice(["?session=nope", "?session=", "?portrait=nope", "?session=%00" * 3])
        if not frames and query == "?session=":
            query = "?session=" + "x" * rng.choice([1, 24, 500])
        url = f"ws://{self._host}:{self._ws_port}/talk{query}"
        if rng.random() < 0.05:
            url = f"ws://{self._host}:{self._ws_port}/" + rng.choice(["nope", "talk/x", "%00"])
        try:
            async with connect(url, max_size=None, open_timeout=20, close_timeout=5) as ws:
                await self._ws_sequence(ws, report)
        except InvalidStatus as exc:
            status = exc.response.status_code
            report.answers[f"ws http {status}"] += 1
            if status >= 500:
                report.failures.append(f"ws {url}: handshake answered {status}")
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            report.answers[f"ws close {code}"] += 1
            if code not in CLOSE_CODES:
                report.failures.append(f"ws {url}: closed with {code} {exc.rcvd.reason if exc.rcvd else ''}")

    async def _ws_sequence(self, ws: object, report: FuzzReport) -> None:
        from websockets.asyncio.client import ClientConnection

        assert isinstance(ws, ClientConnection)
        rng = self._rng
        ready = json.loads(await ws.recv())
        if ready.get("type") == "error":
            code = ready.get("code")
            report.answers[f"ws error {code}"] += 1
            if code not in ERROR_CODES:
                report.failures.append(f"ws: undocumented error code {code!r} at connect")
            await ws.wait_closed()
            received = ws.close_code
            report.answers[f"ws close {received}"] += 1
            if received not in CLOSE_CODES:
                report.failures.append(f"ws: closed with {received} after error {code}")
            return
        if ready.get("type") != "ready":
            report.failures.append(f"ws: first message was {str(ready)[:80]}")
            return
        for _ in range(rng.randint(1, 8)):
            await ws.send(self._ws_message())
        await ws.send(json.dumps({"type": "interrupt"}))  # the probe: always answered with "interrupted"
        while True:
            message = await ws.recv()
            if isinstance(message, bytes):
                continue  # a frames-mode frame
            event = json.loads(message)
            if event.get("type") == "error":
                report.answers[f"ws error {event.get('code')}"] += 1
                if event.get("code") not in ERROR_CODES:
                    report.failures.append(f"ws: undocumented error code {event.get('code')!r}")
            if event.get("type") == "interrupted":
                report.answers["ws interrupted"] += 1
                return

    def _ws_message(self) -> str | bytes:
        rng = self._rng
        kind = rng.randrange(12)
        if kind == 0:
            return bytes(rng.randrange(256) for _ in range(rng.choice([1, 3, 320, 641])))  # odd lengths: bad_audio
        if kind == 1:
            return b"\x00\x01" * rng.choice([160, 800, 4000])
        if kind == 2:
            rate = rng.choice([16000, 48000, 44100, 1, -5, "x", True, 1e9])
            return json.dumps({"type": "start", "sample_rate": rate})
        if kind == 3:
            return json.dumps({"type": "end"})
        if kind == 4:
            return json.dumps({"type": "interrupt"})
        if kind == 5:
            return json.dumps({"type": "set", "emotion": rng.choice(["happy", "sad", "nope", 3]),
                               "intensity": rng.choice([0.5, 2, -1, "x", None])})
        if kind == 6:
            return json.dumps({"type": rng.choice(["nope", "", "START", None, 1])})
        if kind == 7:
            depth = rng.choice([9, 100, 50_000])
            return "[" * depth + "]" * depth
        if kind == 8:
            return rng.choice(["", "nul", "{", "[]", "1", '"start"', "\ud800".encode("utf-8", "surrogatepass").decode(
                "utf-8", "replace")])
        if kind == 9:
            return json.dumps({"type": "start", "sample_rate": 16000, "format": rng.choice(["pcm16", "opus", 7])})
        if kind == 10 and rng.random() < 0.2:
            return b"\x00" * ((1 << 20) + 2)  # over the 1 MiB message limit: closes with 1009
        return json.dumps({"type": "start", "sample_rate": 16000, "x": "y" * rng.choice([1, 10000])})


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or []


def ws_url_parts(base_url: str) -> tuple[str, int]:
    """``http://host:port`` → (host, port)."""
    url = urllib.parse.urlsplit(base_url)
    return url.hostname or "127.0.0.1", url.port or 80
