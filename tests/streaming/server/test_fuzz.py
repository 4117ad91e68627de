"""The CI slice of the protocol fuzzer (the long run is bench/fuzz_server.py): seeded mutated SDP offers,
raw HTTP requests and WebSocket sequences against an in-process server. Every case is answered (a 4xx
with a JSON error, or a documented WebSocket error/close), nothing is a 5xx, nothing is logged with a
traceback, and the server is healthy after every block."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

from livepuppet.streaming.clients.fuzz_client import FuzzReport, ServerFuzzer, real_offers
from livepuppet.streaming.server.app import STATE_KEY

from tests.streaming.server.http_client import http

SEED = 1313
BLOCKS = 6
BLOCK_CASES = 40  # 240 cases in all
LEAK_MARKERS = ("Task was destroyed", "cannot reuse already awaited coroutine", "was never awaited",
                "Error handling request", "Traceback")


def _bad_records(records: list[logging.LogRecord]) -> list[str]:
    bad = []
    for record in records:
        text = record.getMessage()
        if record.exc_info or record.levelno >= logging.ERROR or any(m in text for m in LEAK_MARKERS):
            bad.append(f"{record.name} {record.levelname}: {text[:200]}")
    return bad


def test_fuzzed_offers_requests_and_sockets_are_all_answered(server_factory, config, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.WARNING)
    # The fuzzer checks the answers, not the per-client allowance (tests/…/test_hardening.py covers 429).
    cfg = replace(config, server=replace(config.server, session_rate_per_min=0.0, upload_rate_per_min=0.0))
    server = server_factory(cfg)
    host, port = "127.0.0.1", int(server.base_url.rsplit(":", 1)[1])
    ws_port = int(server.call(lambda: server.app[STATE_KEY].audio_port))  # type: ignore[call-overload]

    async def run() -> FuzzReport:
        fuzzer = ServerFuzzer(host, port, ws_port, await real_offers(), SEED)
        total = FuzzReport()
        for block in range(BLOCKS):
            report = await fuzzer.run(BLOCK_CASES)
            total.add(report)
            status, body, _ = await asyncio.to_thread(http, "GET", server.base_url + "/healthz")
            assert status == 200 and json.loads(body)["status"] == "ok", f"unhealthy after block {block}"
        return total

    report = asyncio.run(run())
    print(f"fuzz: {report.cases} cases, {report.created} offers accepted; answers {dict(report.answers)}")
    assert report.cases == BLOCKS * BLOCK_CASES
    assert not report.failures, "\n".join(report.failures[:20])
    assert not any(k.startswith("http 5") for k in report.answers), report.answers
    # The mix really exercised every edge: rejected offers, aiohttp's own errors, WebSocket errors and closes.
    assert report.answers["http 400"] > 50 and report.answers["http 404"] > 5, report.answers
    assert report.answers["ws interrupted"] > 0 and report.answers["ws close 4400"] > 0, report.answers
    assert _bad_records(caplog.records) == []
    # Everything the fuzzer opened is gone again.
    sessions = server.app[STATE_KEY].sessions
    assert server.call(lambda: sessions.count) == 0
