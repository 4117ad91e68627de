"""``livepuppet serve``: the real-time server (web page, WebRTC/WHIP, audio WebSocket, metrics)."""

from __future__ import annotations

import argparse
import asyncio
import os

TOKEN_ENV = "LIVEPUPPET_TOKEN"


def server_overrides(args: argparse.Namespace) -> list[str]:
    """CLI flags → ``server.*`` config overrides (flags win over --set)."""
    from livepuppet.cli.main import config_overrides

    overrides = config_overrides(args)
    for flag, key in (("host", "host"), ("port", "port"), ("ws_port", "ws_port"), ("max_sessions", "max_sessions"),
                      ("workers", "workers")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"server.{key}={value!r}" if isinstance(value, str) else f"server.{key}={value}")
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV, "")
    if token:
        overrides.append(f"server.token={token!r}")
    return overrides


def _portrait(path: str | None) -> tuple[object, str]:
    from livepuppet.engine.media.video_io import load_image
    from skimage import data

    if path:
        return load_image(path), os.path.basename(path)
    return data.astronaut(), "astronaut (bundled)"


def cmd_serve(args: argparse.Namespace) -> int:
    from livepuppet.engine.config import load_config
    from livepuppet.streaming.server.app import check_exposure, serve

    config = load_config(args.config, server_overrides(args))
    check_exposure(config)
    image, name = _portrait(args.source)

    def ready(url: str) -> None:
        print(f"livepuppet: serving {url} (portrait: {name}; WHIP ingest at {url}whip; Ctrl-C to stop)",
              flush=True)

    try:
        asyncio.run(serve(config, image, name, ready))  # type: ignore[arg-type]
    except KeyboardInterrupt:
        pass
    print("livepuppet: stopped")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser("serve", parents=[common], help="run the real-time server and its web page")
    serve.add_argument("--source", help="default portrait (default: the bundled astronaut photo)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8080; the audio WebSocket uses port+1)")
    serve.add_argument("--ws-port", type=int, help="audio WebSocket port (server.ws_port; default --port + 1)")
    serve.add_argument("--token", help=f"bearer token for the API and WHIP (or set {TOKEN_ENV}); required "
                                       "when listening beyond localhost")
    serve.add_argument("--max-sessions", type=int, help="concurrent sessions allowed (default 4)")
    serve.add_argument("--workers", type=int, help="engine worker processes (default -1: one per core; 0 runs the "
                                                   "engine inside the server process)")
    serve.set_defaults(func=cmd_serve)
