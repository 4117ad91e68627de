"""The HTTP side of the real-time server (aiohttp): the web page, WHIP signalling, portraits, controls,
``/metrics`` and ``/healthz``. Media runs through :mod:`livepuppet.streaming.server.session`."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hmac
import ipaddress
import logging
import signal
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from livepuppet.engine.clock import Clock, MonotonicClock
from livepuppet.engine.config import EngineConfig
from livepuppet.engine.heap import freeze_startup_heap
from livepuppet.engine.media.video_io import decode_image
from livepuppet.errors import ConfigError, DependencyError, InputError, NoFaceError
from livepuppet.streaming.protocol import load_json
from livepuppet.streaming.server.controls import Controls
from livepuppet.streaming.server.loop_probe import LoopProbe
from livepuppet.streaming.server.memory import release_free_memory
from livepuppet.streaming.server.metrics import ServerMetrics
from livepuppet.streaming.server.portraits import PortraitStore, UnknownPortrait
from livepuppet.streaming.server.rate_limit import ClientRateLimit, RateLimited
from livepuppet.streaming.server.resources import EngineResources
from livepuppet.streaming.server.session_manager import SessionLimit, SessionManager, UnknownSession
from livepuppet.streaming.server.talk_ws import TalkServer
from livepuppet.streaming.server.webrtc import BadOffer, apply_process_settings, check_offer_text

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROTECTED_PREFIXES = ("/api/", "/whip", "/whep", "/metrics")
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
MAX_CONTROLS_BYTES = 16 * 1024  # a PATCH of live controls is a small flat object
MAX_CONTROLS_DEPTH = 4


@dataclasses.dataclass
class ServerState:
    """Everything a request handler needs, owned by the app (no module globals)."""

    config: EngineConfig
    clock: Clock
    metrics: ServerMetrics
    portraits: PortraitStore
    resources: EngineResources
    sessions: SessionManager
    talk: TalkServer
    session_limit: ClientRateLimit
    upload_limit: ClientRateLimit
    loop_probe: LoopProbe
    audio_port: int = 0


STATE_KEY: web.AppKey[ServerState] = web.AppKey("livepuppet_state", ServerState)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(config: EngineConfig) -> None:
    """Refuse to listen beyond this machine without a token (fail loudly at the edge)."""
    if not is_loopback(config.server.host) and not config.server.token:
        raise ConfigError(f"listening on {config.server.host} exposes the server to the network: set a bearer "
                          "token with --token (clients send 'Authorization: Bearer TOKEN')")


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _state(request: web.Request) -> ServerState:
    return request.app[STATE_KEY]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Origin check, bearer token, and the mapping of user errors to 4xx JSON answers."""
    state = _state(request)
    server = state.config.server
    origin = request.headers.get("Origin")
    if origin and origin != f"{request.scheme}://{request.host}" and origin not in server.allowed_origins:
        return _count(state, _error(403, f"origin {origin} is not allowed (server.allowed_origins)"))
    if server.token and request.path.startswith(PROTECTED_PREFIXES):
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {server.token}".encode()):
            return _count(state, _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"}))
    try:
        return await handler(request)
    except (UnknownSession, UnknownPortrait) as exc:
        return _count(state, _error(404, str(exc)))
    except NoFaceError as exc:
        return _count(state, _error(422, str(exc)))
    except DependencyError as exc:
        return _count(state, _error(503, str(exc)))
    except WrongContentType as exc:
        return _count(state, _error(415, str(exc)))
    except SessionLimit as exc:
        return _count(state, _error(503, str(exc), **{"Retry-After": str(exc.retry_after)}))
    except RateLimited as exc:
        return _count(state, _error(429, str(exc), **{"Retry-After": str(exc.retry_after_s)}))
    except (BadOffer, InputError) as exc:
        return _count(state, _error(400, str(exc)))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own errors (unknown route, wrong method, body too large, …) as JSON like ours.
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return _count(state, _error(exc.status, _http_reason(exc.status, exc.reason, request), **headers))
    except Exception:  # a bug: logged with its traceback, answered in JSON like everything else
        log.exception("request %s %s failed", request.method, request.path)
        return _count(state, _error(500, "internal error (see the server log)"))


def _http_reason(status: int, reason: str, request: web.Request) -> str:
    if status == 404:
        return f"no such resource: {request.method} {request.path[:100]}"
    if status == 405:
        return f"method {request.method} is not allowed on {request.path[:100]}"
    if status == 413:
        return f"request body too large (the limit is {_state(request).config.server.max_upload_bytes} bytes)"
    return reason


def _client(request: web.Request) -> str:
    """The remote address (per-client limits); behind a proxy this is the proxy."""
    return request.remote or "unknown"


def _count(state: ServerState, response: web.Response) -> web.Response:
    state.metrics.http_errors.labels(str(response.status)).inc()
    return response


async def page(request: web.Request) -> web.StreamResponse:
    return _static_response("index.html")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return _static_response(name)


def _static_response(name: str) -> web.Response:
    body = (resources.files("livepuppet.streaming.server") / "static" / name).read_bytes()
    return web.Response(body=body, content_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


async def healthz(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    pool = state.resources.pool
    body: dict[str, object] = {"status": "degraded" if pool is not None and pool.degraded else "ok",
                               "sessions": state.sessions.count, "engine_jobs": state.resources.worker.job_count,
                               "engine_load": round(state.resources.load, 2),
                               "engine_capacity": round(state.resources.capacity, 2),
                               "front_load": round(state.resources.front_load, 2)}
    if pool is not None:
        body["workers"] = [{"index": h.index, "pid": h.pid, "up": h.alive, "sessions": len(h.jobs),
                            "load": round(h.busy, 2)} for h in pool.handles]
        body["engine_jobs"] = sum(len(h.jobs) for h in pool.handles)
    return web.json_response(body)


async def metrics_page(request: web.Request) -> web.StreamResponse:
    body = _state(request).metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def server_info(request: web.Request) -> web.StreamResponse:
    server = _state(request).config.server
    return web.json_response({"fps": server.fps, "max_sessions": server.max_sessions,
                              "audio_port": _state(request).audio_port, "max_upload_bytes": server.max_upload_bytes})


async def list_portraits(request: web.Request) -> web.StreamResponse:
    items = [{"id": p.id, "name": p.name, "thumbnail": f"/api/portraits/{p.id}/thumbnail.jpg"}
             for p in _state(request).portraits.list()]
    return web.json_response({"portraits": items})


async def portrait_thumbnail(request: web.Request) -> web.StreamResponse:
    portrait = _state(request).portraits.get(request.match_info["id"])
    return web.Response(body=portrait.thumbnail_jpeg, content_type="image/jpeg")


async def upload_portrait(request: web.Request) -> web.StreamResponse:
    """Raw image bytes in the body (JPEG/PNG/WebP, sniffed); answers 201 with the portrait's id."""
    state = _state(request)
    state.upload_limit.take(_client(request))
    limit = state.config.server.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        return _count(state, _error(413, f"upload larger than {limit} bytes"))
    data = await request.read()  # aiohttp enforces client_max_size (→ 413) when no length was declared
    if not data:
        raise InputError("empty upload: send the image bytes as the request body")
    name = request.query.get("name", "upload")
    loop = asyncio.get_running_loop()
    image: np.ndarray = await loop.run_in_executor(
        None, lambda: decode_image(data, name, max_pixels=state.config.server.max_upload_pixels))
    try:
        portrait = await loop.run_in_executor(None, state.portraits.add, image, name)
    finally:
        del image  # the full-size decode: only its downscaled copy is kept
        await loop.run_in_executor(None, release_free_memory)
    return web.json_response({"id": portrait.id, "name": portrait.name,
                              "thumbnail": f"/api/portraits/{portrait.id}/thumbnail.jpg"}, status=201)


class WrongContentType(InputError):
    """Offers must be application/sdp (→ 415)."""


async def _read_offer(request: web.Request) -> str:
    if request.content_type != "application/sdp":
        raise WrongContentType("offers must be sent as Content-Type: application/sdp")
    try:
        return (await request.read()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadOffer("SDP offer is not UTF-8 text") from exc


async def whip_post(request: web.Request) -> web.StreamResponse:
    """WHIP ingest: SDP offer in, SDP answer out (201 + Location of the session resource)."""
    state = _state(request)
    offer = await _read_offer(request)
    mode = request.query.get("mode", "puppet")
    portrait_id = request.query.get("portrait")
    portrait = state.portraits.get(portrait_id) if portrait_id else state.portraits.default
    if mode in ("puppet", "echo", "talk"):  # an unknown mode is the session manager's 400
        check_offer_text(offer, mode=mode)  # cheap, so bad offers do not spend the client's allowance
    state.session_limit.take(_client(request))
    session, answer = await state.sessions.create(offer, portrait, mode)
    location = f"/whip/{session.id}"
    return web.Response(status=201, text=answer, content_type="application/sdp",
                        headers={"Location": location, "X-Session-Id": session.id})


async def whip_options(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers={"Accept-Post": "application/sdp"})


async def whip_delete(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    if not await state.sessions.close(request.match_info["id"]):
        raise UnknownSession("no such session (it ended, timed out or never existed)")
    return web.Response(status=200)


async def whip_patch(request: web.Request) -> web.StreamResponse:
    # Trickle ICE is not needed: the answer carries all candidates (aiortc gathers before answering).
    _state(request).sessions.get(request.match_info["id"])
    return _error(405, "trickle ICE is not supported: send the offer with all candidates gathered",
                  Allow="DELETE")


async def whep_post(request: web.Request) -> web.StreamResponse:
    """WHEP-style egress: watch a session's output (SDP offer in, answer out, ``Location`` to delete)."""
    state = _state(request)
    offer = await _read_offer(request)
    session_id = request.match_info["id"]
    state.sessions.get(session_id)  # 404 first
    check_offer_text(offer, "WHEP offer", mode="view")
    state.session_limit.take(_client(request))
    viewer_id, answer = await state.sessions.add_viewer(session_id, offer)
    return web.Response(status=201, text=answer, content_type="application/sdp",
                        headers={"Location": f"/whep/{session_id}/{viewer_id}"})


async def whep_delete(request: web.Request) -> web.StreamResponse:
    if not await _state(request).sessions.remove_viewer(request.match_info["id"], request.match_info["viewer"]):
        raise UnknownSession("no such viewer (it ended or never existed)")
    return web.Response(status=200)


async def session_info(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    session = state.sessions.get(request.match_info["id"])
    return web.json_response(dataclasses.asdict(session.info(state.clock.now_ns())))


async def session_controls(request: web.Request) -> web.StreamResponse:
    session = _state(request).sessions.get(request.match_info["id"])
    if request.content_length is not None and request.content_length > MAX_CONTROLS_BYTES:
        raise InputError(f"controls must be a JSON object of at most {MAX_CONTROLS_BYTES} bytes")
    body = b""
    while len(body) <= MAX_CONTROLS_BYTES:  # chunked bodies too: never more than the limit is read
        chunk = await request.content.read(MAX_CONTROLS_BYTES + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > MAX_CONTROLS_BYTES:
        raise InputError(f"controls must be a JSON object of at most {MAX_CONTROLS_BYTES} bytes")
    data: Any = load_json(body, max_depth=MAX_CONTROLS_DEPTH)  # bad or too deep → InputError (400)
    session.job.control(Controls.parse(data))
    return web.json_response({"ok": True})


def _bind_error(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the port is already in use"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need root)"
    return exc.strerror or str(exc)


async def _start_talk(talk: TalkServer, config: EngineConfig) -> int:
    server = config.server
    try:
        return await talk.start(server.host, server.audio_port)
    except OSError as exc:
        origin = f"server.ws_port / --ws-port = {server.ws_port}" if server.ws_port else \
            f"server.ws_port / --ws-port, by default --port + 1 = {server.port} + 1"
        raise ConfigError(f"cannot listen on {server.host}:{server.audio_port} for the audio WebSocket "
                          f"({origin}): {_bind_error(exc)}; choose another port with --ws-port") from exc


def create_app(config: EngineConfig, portrait: np.ndarray, portrait_name: str = "portrait",
               clock: Clock | None = None) -> web.Application:
    """The server as an aiohttp application (run it with :func:`serve` or aiohttp's test utilities)."""
    clock = clock or MonotonicClock()
    metrics = ServerMetrics.create()
    portraits = PortraitStore(config, config.server.max_portraits)
    resources = EngineResources(config, metrics)
    sessions = SessionManager(config, clock, metrics, resources)
    server = config.server
    session_limit = ClientRateLimit("sessions", server.session_rate_per_min, server.session_burst, clock,
                                    "server.session_rate_per_min, server.session_burst")
    upload_limit = ClientRateLimit("uploads", server.upload_rate_per_min, server.upload_burst, clock,
                                   "server.upload_rate_per_min, server.upload_burst")
    state = ServerState(config=config, clock=clock, metrics=metrics, portraits=portraits, resources=resources,
                        sessions=sessions, talk=TalkServer(config, clock, sessions, portraits, metrics, session_limit),
                        session_limit=session_limit, upload_limit=upload_limit,
                        loop_probe=LoopProbe(metrics.loop_lag))
    app = web.Application(middlewares=[guard], client_max_size=config.server.max_upload_bytes)
    app[STATE_KEY] = state

    async def on_startup(app: web.Application) -> None:
        # The WebSocket first: when its port is taken, nothing else has started yet.
        state.audio_port = await _start_talk(state.talk, config)
        apply_process_settings(config.server)
        await state.resources.start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: state.portraits.add(portrait, portrait_name, "default",
                                                                     pinned=True))
        state.sessions.start()
        state.loop_probe.start()

    async def on_cleanup(app: web.Application) -> None:
        await state.loop_probe.aclose()
        await state.talk.aclose()
        await state.sessions.aclose()
        await state.resources.aclose()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/api/info", server_info)
    app.router.add_get("/api/portraits", list_portraits)
    app.router.add_post("/api/portraits", upload_portrait)
    app.router.add_get("/api/portraits/{id}/thumbnail.jpg", portrait_thumbnail)
    app.router.add_post("/whip", whip_post)
    app.router.add_route("OPTIONS", "/whip", whip_options)
    app.router.add_delete("/whip/{id}", whip_delete)
    app.router.add_patch("/whip/{id}", whip_patch)
    app.router.add_post("/whep/{id}", whep_post)
    app.router.add_delete("/whep/{id}/{viewer}", whep_delete)
    app.router.add_get("/api/sessions/{id}", session_info)
    app.router.add_patch("/api/sessions/{id}", session_controls)
    return app


async def serve(config: EngineConfig, portrait: np.ndarray, portrait_name: str,
                ready: Callable[[str], None] | None = None) -> None:
    """Run the server until cancelled (Ctrl-C)."""
    check_exposure(config)
    app = create_app(config, portrait, portrait_name)
    runner = make_runner(app, handle_signals=False)
    await runner.setup()  # the app's start-up: workers, the default portrait
    frozen = freeze_startup_heap()
    log.debug("%d start-up objects frozen out of the cycle collector's passes", frozen)
    try:
        await _serve_on(runner, config, ready)
    finally:
        await runner.cleanup()


async def _serve_on(runner: web.AppRunner, config: EngineConfig, ready: Callable[[str], None] | None) -> None:
    site = web.TCPSite(runner, config.server.host, config.server.port)
    try:
        await site.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {config.server.host}:{config.server.port} for HTTP "
                          f"(server.port / --port): {_bind_error(exc)}; choose another port with --port") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a clean shutdown on Ctrl-C and on a service manager's TERM
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    if ready is not None:
        ready(f"http://{config.server.host}:{config.server.port}/")
    await stop.wait()


class _JsonErrorHandler(RequestHandler):
    """aiohttp answers requests it cannot parse (oversized headers, broken chunked bodies, bad request
    lines) itself, in plain text, and logs each with a traceback. Here they get the JSON error and one log
    line: a malformed request is the client's mistake, not the server's."""

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        reason = (message or (str(exc) if exc else "") or "malformed HTTP request").splitlines()[0][:200]
        log.info("bad HTTP request from %s: %s %s", request.remote, status, reason)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        response = web.json_response({"error": f"bad HTTP request: {reason}"}, status=status)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class _JsonErrorRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # same object, our handler class for its connections
        return server


def make_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """An :class:`aiohttp.web.AppRunner` whose low-level HTTP errors are JSON too (use it to serve ``app``)."""
    return _JsonErrorRunner(app, **kwargs)
