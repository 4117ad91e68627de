"""Damaged packets cost only themselves: skipped, counted, warned about once, and everything after them
stays at its own time (audio events land where they were)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from livepuppet.engine.media.audio_mux import AudioCopier, AudioFeed
from livepuppet.engine.media.media_writer import MediaWriter
from livepuppet.engine.media.packets import DamageCount
from livepuppet.engine.media.video_io import read_video

BEEPS_S = (0.3, 0.8, 1.5)


@pytest.mark.parametrize("codec", ["aac", "ac3", "mp3", "opus"])
def test_damaged_audio_is_skipped_and_the_rest_stays_in_place(tmp_path: Path, codec: str, kit: Any,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    ext, _, rate, _ = kit.AUDIO_CODECS[codec]
    source = tmp_path / f"speech{ext}"
    # damage between the beeps, so that the ones after it show whether the damage moved them
    pcm = kit.beeps(BEEPS_S, 2.0, rate)
    assert kit.write_audio_file(source, codec, pcm, damage_s=((0.4, 0.5), (1.0, 1.1))) >= 4
    intact = tmp_path / f"intact{ext}"
    kit.write_audio_file(intact, codec, pcm)
    expected = kit.find_beeps(intact)  # where a player puts them (MP3's encoder delay included)
    assert len(expected) == 3
    out = tmp_path / "out.mp4"
    feed = AudioFeed(source, 48_000, 1)
    with caplog.at_level(logging.WARNING), MediaWriter(out, 64, 64, 25, audio_rate=48_000) as writer:
        copier = AudioCopier(feed, writer)
        for k in range(50):
            writer.write_frame(np.zeros((64, 64, 3), np.uint8))
            copier.advance((k + 1) / 25)
        copier.finish()
    assert feed.damage.damaged, "the damage was noticed"
    warnings = [r for r in caplog.records if "damaged" in r.getMessage() or "gap" in r.getMessage()]
    assert len(warnings) == 1, "warned once per stream"
    found = kit.find_beeps(out)
    for t in expected:  # (a decoder may also conceal a damaged frame as noise: extra events are allowed)
        assert min(abs(np.array(found) - t)) < 0.005, (found, expected)
    assert kit.audio_duration(out) == pytest.approx(kit.audio_duration(intact), abs=0.03), \
        "the lost packets stay as silence, not cut out"


def test_damaged_video_packets_are_skipped_with_their_time(tmp_path: Path, driver_video: Path, kit: Any) -> None:
    path = tmp_path / "damaged.mp4"
    kit.remake_driver(driver_video, path, damage_video=(5, 6, 15))
    damage = DamageCount(name="video")
    frames = list(read_video(path, damage))
    assert damage.packets >= 1
    assert 18 <= len(frames) < 24
    stamps = [f.pts / 1e9 for f in frames]
    assert all(any(abs(t - i / 12) < 0.002 for i in range(24)) for t in stamps), "survivors keep their own times"
    assert stamps[-1] == pytest.approx(23 / 12, abs=0.002)


def test_damaged_driver_still_renders_every_frame_with_audio_in_place(tmp_path: Path, driver_video: Path,
                                                                       portrait_png: Path, kit: Any,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from livepuppet.cli.main import main

    driver = tmp_path / "damaged.mp4"
    # AAC packets are 21.3 ms: damage 20-24 (0.43-0.53 s) sits between the beeps at 0.3 and 0.8 s
    kit.remake_driver(driver_video, driver, audio=kit.beeps(BEEPS_S, 2.0, 48_000), damage_video=(7, 16),
                  damage_audio=(20, 21, 22, 23, 24))
    out = tmp_path / "out.mp4"
    assert main(["animate", "--source", str(portrait_png), "--driving", str(driver), "-o", str(out), "-q",
                 "--crop", "--set", "render.crop_size=128"]) == 0
    printed = capsys.readouterr().out
    assert "damaged packets skipped" in printed
    with av.open(str(out)) as container:
        assert len(list(container.decode(video=0))) == 24, "every instant has a frame (a lost one is held)"
    found = kit.find_beeps(out)
    assert len(found) == 3 and np.allclose(found, BEEPS_S, atol=0.005), found


def test_vfr_driver_with_late_audio_stays_in_sync(tmp_path: Path, driver_video: Path, portrait_png: Path,
                                                  kit: Any, measure_face: Any) -> None:
    """Frames 0-11 in the first 0.5 s, 12-23 over the next 1.5 s; the audio track starts at 0.46 s. At 10 fps
    each output instant must show the driver frame on screen then, and the beep stay at 0.46 + 0.2 s."""
    from livepuppet.cli.main import main

    times = [i / 24 for i in range(12)] + [0.5 + i / 8 for i in range(12)]
    driver = tmp_path / "vfr.mp4"
    kit.remake_driver(driver_video, driver, times_s=times, audio=kit.beeps((0.2,), 1.0, 48_000),
                      audio_start_s=0.46)
    out = tmp_path / "out.mp4"
    assert main(["animate", "--source", str(portrait_png), "--driving", str(driver), "-o", str(out), "-q",
                 "--crop", "--fps", "10", "--set", "retarget.filter_min_cutoff=100",
                 "--set", "retarget.filter_beta=0"]) == 0
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 20
    # the driver's mouth is open in frames 1-5 and 13-17, shut in 6-11 and 18-23 (conftest.talking_motion)
    # frames 4, 7, 14, 18 on screen (frame 1's driver frame 2 is too early: the tracker is still settling)
    gap = {k: measure_face(frames[k]).lip_gap for k in (2, 3, 8, 13)}
    assert gap[2] > gap[3] + 0.03 and gap[8] > gap[3] + 0.03 and gap[8] > gap[13] + 0.03, gap
    found = kit.find_beeps(out)
    assert len(found) == 1 and found[0] == pytest.approx(0.66, abs=0.005), found


def test_read_audio_for_speech_keeps_damage_and_late_starts_in_place(tmp_path: Path, kit: Any) -> None:
    """``speak`` animates the mouth from this array and muxes the file itself: both must agree."""
    from livepuppet.engine.media.audio_io import read_audio

    path = tmp_path / "speech.m4a"
    assert kit.write_audio_file(path, "aac", kit.beeps((0.3, 0.9), 1.2, 48_000), damage_s=((0.7, 0.8),),
                                start_s=0.25) >= 3
    pcm = read_audio(path, 16_000)
    loud = np.flatnonzero(np.abs(pcm) > 0.1) / 16_000
    onsets = [loud[0], *loud[1:][np.diff(loud) > 0.1]]
    assert np.allclose(onsets, (0.55, 1.15), atol=0.003), onsets
    assert len(pcm) / 16_000 == pytest.approx(1.45, abs=0.03)


def test_a_driver_cut_off_mid_file_gives_what_is_there(tmp_path: Path, driver_video: Path, kit: Any) -> None:
    whole = tmp_path / "whole.mkv"
    kit.remake_driver(driver_video, whole)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    frames = list(read_video(cut))
    assert 8 <= len(frames) < 24
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)
