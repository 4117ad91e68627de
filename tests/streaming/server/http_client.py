"""A tiny blocking HTTP client for the server tests (urllib: no session state between requests)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

SDP = {"Content-Type": "application/sdp"}


def http(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
         ) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def error_of(body: bytes) -> str:
    return str(json.loads(body)["error"])
