#!/usr/bin/env bash
# The README's test command, for a fresh machine too: the Debian packages the tests use (installed when run
# as root with apt; otherwise named, with the command to install them), the test extras into the active
# Python environment, then lint, types and the suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# chromium: the web-page tests; espeak-ng, sox: speech for the audio tests; the Asterisk prompts: real recorded
# speech with transcripts (English, and Italian for the cross-language aligner) for the audio model's tests.
PACKAGES="chromium espeak-ng libespeak-ng1 sox asterisk-core-sounds-en-wav asterisk-core-sounds-en
    asterisk-core-sounds-it-wav asterisk-core-sounds-it"
missing=""
for pkg in $PACKAGES; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "the tests need these Debian packages:$missing" >&2
        echo "install them with: sudo apt-get install$missing" >&2
        exit 1
    fi
fi
if [ -z "${VIRTUAL_ENV:-}" ]; then
    echo "activate the project's virtual environment first (. .venv/bin/activate), see the README" >&2
    exit 1
fi
python -c "import mediapipe" 2>/dev/null || pip install -q --no-deps mediapipe==0.10.21
pip install -q -e '.[test,pipecat,livekit]'  # the voice-agent integrations are tested too
ruff check .
mypy streaming cli engine kernels export integrations errors.py
python -m pytest -n 2 -m "not realtime" "$@"
# Tests that stream in real time and measure it run afterwards, one at a time, on an otherwise idle machine:
# beside the CPU-bound tests on 2 cores they would measure the contention instead of the server.
python -m pytest -m realtime "$@"
