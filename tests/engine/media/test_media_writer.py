"""The streaming writer: complete files or none, never over an input, codec from the extension, audio
exactly where it was written (start offset kept, encoder priming recorded: no constant lag)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from livepuppet.engine.media.audio_mux import AudioCopier, AudioFeed
from livepuppet.engine.media.media_writer import MediaWriter
from livepuppet.errors import InputError

BLACK = np.zeros((64, 64, 3), np.uint8)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


@pytest.mark.parametrize("interrupt", [RuntimeError("render failed"), KeyboardInterrupt()])
def test_an_interrupted_write_leaves_nothing_and_keeps_the_old_file(tmp_path: Path, interrupt: BaseException) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous render")
    with pytest.raises(type(interrupt)), MediaWriter(out, 64, 64, 25, audio_rate=48_000) as writer:
        for _ in range(10):
            writer.write_frame(BLACK)
            writer.write_audio(np.zeros(1920, np.float32))
        raise interrupt
    assert out.read_bytes() == b"the previous render"
    assert leftovers(tmp_path) == []


def test_the_file_appears_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    with MediaWriter(out, 64, 64, 25) as writer:
        writer.write_frame(BLACK)
        assert not out.exists() and len(leftovers(tmp_path)) == 1
    assert out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_output_that_is_an_input_is_refused_before_anything_is_touched(tmp_path: Path, link: str) -> None:
    source = tmp_path / "driver.mp4"
    source.write_bytes(b"precious input")
    out = source
    if link == "symlink":
        out = tmp_path / "alias.mp4"
        out.symlink_to(source)
    elif link == "hardlink":
        out = tmp_path / "alias.mp4"
        os.link(source, out)
    with pytest.raises(InputError, match="is the input"):
        MediaWriter(out, 64, 64, 25, inputs=[None, source])
    assert source.read_bytes() == b"precious input" and leftovers(tmp_path) == []


@pytest.mark.parametrize(("name", "video", "audio"), [("a.mp4", "h264", "aac"), ("a.mov", "h264", "aac"),
                                                      ("a.mkv", "h264", "aac"), ("a.webm", "vp9", "opus")])
def test_codec_follows_the_extension(tmp_path: Path, name: str, video: str, audio: str) -> None:
    with MediaWriter(tmp_path / name, 64, 64, 25, audio_rate=48_000) as writer:
        for _ in range(5):
            writer.write_frame(BLACK)
        writer.write_audio(np.zeros(9600, np.float32))
    with av.open(str(tmp_path / name)) as container:
        assert container.streams.video[0].codec_context.name == video
        assert container.streams.audio[0].codec_context.name == audio
        assert len(list(container.decode(video=0))) == 5


@pytest.mark.parametrize("name", ["a.gif", "noext", "a.avi"])
def test_unsupported_extensions_are_one_line_errors(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match=r"\.mp4, \.mov, \.mkv or \.webm") as info:
        MediaWriter(tmp_path / name, 64, 64, 25)
    assert "\n" not in str(info.value) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["sync.mp4", "sync.webm"])
def test_audio_lands_exactly_where_it_was_written(tmp_path: Path, name: str, kit: Any) -> None:
    """No constant lag from the encoder's priming (AAC: 1024 samples = 21 ms), chunked writes stay exact."""
    pcm = kit.beeps((0.5, 1.25), 2.0, 48_000)
    out = tmp_path / name
    with MediaWriter(out, 64, 64, 25, audio_rate=48_000) as writer:
        for k in range(50):
            writer.write_frame(BLACK)
            writer.write_audio(pcm[k * 1920:(k + 1) * 1920])
    found = kit.find_beeps(out)
    assert len(found) == 2 and np.allclose(found, (0.5, 1.25), atol=0.002), found


def test_audio_that_starts_late_stays_late(tmp_path: Path, kit: Any) -> None:
    source = tmp_path / "late.m4a"
    kit.write_audio_file(source, "aac", kit.beeps((0.2,), 1.0, 48_000), start_s=0.46)
    out = tmp_path / "out.mp4"
    feed = AudioFeed(source, 48_000, 1)
    with MediaWriter(out, 64, 64, 25, audio_rate=48_000) as writer:
        copier = AudioCopier(feed, writer)
        for k in range(40):
            writer.write_frame(BLACK)
            copier.advance((k + 1) / 25)
        copier.finish()
    found = kit.find_beeps(out)
    assert len(found) == 1 and found[0] == pytest.approx(0.66, abs=0.003), found
