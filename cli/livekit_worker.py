"""``livepuppet livekit-worker``: register with a LiveKit server as the agent worker ``livepuppet-avatar``;
each dispatched job renders one avatar for the agent that asked (see docs/integrations.md). Load reports are
the engine's real time per frame against the frame budget, so LiveKit spreads avatars over machines."""

from __future__ import annotations

import argparse
import asyncio
import os

URL_ENV, KEY_ENV, SECRET_ENV = "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"


def worker_settings(args: argparse.Namespace) -> tuple[str, str, str]:
    """(url, key, secret) from the flags, else the environment LiveKit's own tools read; one clear error."""
    from livepuppet.errors import InputError

    url = args.url or os.environ.get(URL_ENV, "")
    key = args.api_key or os.environ.get(KEY_ENV, "")
    secret = args.api_secret or os.environ.get(SECRET_ENV, "")
    missing = [flag for flag, value in (("--url", url), ("--api-key", key), ("--api-secret", secret)) if not value]
    if missing:
        raise InputError(f"livekit-worker needs {', '.join(missing)} (or {URL_ENV}, {KEY_ENV}, {SECRET_ENV})")
    if not url.startswith(("ws://", "wss://", "http://", "https://")):
        raise InputError(f"--url must be a LiveKit server URL (ws://… or wss://…), not {url!r}")
    if not 0.0 < args.load_threshold <= 1.0:
        raise InputError(f"--load-threshold must be in (0, 1], not {args.load_threshold}")
    return url, key, secret


def cmd_livekit_worker(args: argparse.Namespace) -> int:
    from livepuppet.cli.main import config_overrides
    from livepuppet.engine.config import load_config

    url, key, secret = worker_settings(args)
    config = load_config(args.config, config_overrides(args))
    from livepuppet.engine.heap import freeze_startup_heap
    from livepuppet.integrations.avatar import load_avatar
    from livepuppet.integrations.livekit import AGENT_NAME, avatar_server  # needs the livekit extra

    avatar = load_avatar(args.source, config)
    freeze_startup_heap()  # this process serves for life: what is loaded now stays out of the collector's passes
    server = avatar_server(url=url, api_key=key, api_secret=secret, config=config,
                           load_threshold=args.load_threshold, avatar=avatar)
    if not args.quiet:
        print(f"livepuppet: registering agent worker {AGENT_NAME!r} with {url}")
    asyncio.run(server.run())
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    worker = sub.add_parser("livekit-worker", parents=[common],
                            help="serve avatars to LiveKit voice agents (agent worker 'livepuppet-avatar')")
    worker.add_argument("--url", help=f"LiveKit server, e.g. wss://my.livekit.host (or set {URL_ENV})")
    worker.add_argument("--api-key", help=f"LiveKit API key (or set {KEY_ENV})")
    worker.add_argument("--api-secret", help=f"LiveKit API secret (or set {SECRET_ENV})")
    worker.add_argument("--source", help="portrait (default: the bundled astronaut photo)")
    worker.add_argument("--load-threshold", type=float, default=0.8,
                        help="stop taking jobs past this load (engine busy cores ÷ cores, default 0.8)")
    worker.set_defaults(func=cmd_livekit_worker)
