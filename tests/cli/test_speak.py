"""``livepuppet speak``: a portrait says an audio file; the video has the speech's length and its audio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
from livepuppet.cli.main import main


def test_speak_writes_a_talking_video_with_the_audio(tmp_path: Path, speech_wav: Path) -> None:
    out = tmp_path / "talk.mp4"
    assert main(["speak", "--audio", str(speech_wav), "-o", str(out), "--crop", "--emotion", "happy", "-q"]) == 0
    with av.open(str(speech_wav)) as src:
        speech_s = float(src.duration / 1e6)  # type: ignore[operator]
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert container.streams.audio, "the speech was not muxed in"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        fps = float(video.average_rate)  # type: ignore[arg-type]
    assert fps == 25.0 and frames[0].shape == (512, 512, 3)
    assert abs(len(frames) / fps - (speech_s + 0.4)) < 0.1  # the speech plus a short tail
    mouth = np.array([f[330:420, 190:330].astype(float).mean() for f in frames])  # the mouth region changes
    assert mouth.std() > 1.0


def test_speak_refuses_a_file_that_is_not_audio(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    result = subprocess.run([sys.executable, "-m", "livepuppet", "speak", "--audio", str(bad), "-o",
                             str(tmp_path / "o.mp4"), "-q"], capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.startswith("livepuppet:")]
    assert result.returncode == 3 and len(lines) == 1 and "not a readable audio file" in lines[0]
    assert "Traceback" not in result.stderr
