"""``livepuppet livekit-worker``: registered as a subcommand; missing or bad settings are one clear error
(exit 3) before anything connects. (Registering with a real LiveKit server is not tested: none runs here.)"""

from __future__ import annotations

import pytest
from livepuppet.cli.main import build_parser, main


@pytest.fixture(autouse=True)
def no_livekit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)


def test_livekit_worker_is_a_subcommand() -> None:
    args = build_parser().parse_args(["livekit-worker", "--url", "wss://lk.example", "--api-key", "k",
                                      "--api-secret", "s", "--source", "me.jpg"])
    assert args.func.__name__ == "cmd_livekit_worker" and args.source == "me.jpg" and args.load_threshold == 0.8


@pytest.mark.parametrize(("argv", "message"), [
    ([], "needs --url, --api-key, --api-secret"),
    (["--url", "wss://lk.example", "--api-key", "k"], "needs --api-secret"),
    (["--url", "lk.example", "--api-key", "k", "--api-secret", "s"], "must be a LiveKit server URL"),
    (["--url", "wss://lk.example", "--api-key", "k", "--api-secret", "s", "--load-threshold", "1.5"],
     "--load-threshold must be in"),
])
def test_bad_settings_are_one_clear_error(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["livekit-worker", *argv]) == 3
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("livepuppet:")]
    assert len(err) == 1 and message in err[0]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from livepuppet.cli.livekit_worker import worker_settings

    monkeypatch.setenv("LIVEKIT_URL", "wss://lk.example")
    monkeypatch.setenv("LIVEKIT_API_KEY", "k")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s")
    args = build_parser().parse_args(["livekit-worker"])
    assert worker_settings(args) == ("wss://lk.example", "k", "s")
