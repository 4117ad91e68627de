"""Reading speech audio from files (PyAV decodes every format FFmpeg knows), as mono float32.

Samples are placed by their timestamps from 0, exactly as :class:`~.audio_mux.AudioFeed` muxes the same
file into a video: audio that starts late keeps its silence before it, and a damaged packet (skipped,
counted, warned about once) leaves a silent gap instead of pulling the rest earlier. So a face animated
from this array stays in sync with the file's own audio track.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from livepuppet.engine.media.audio_mux import AUDIO_HINT, AudioFeed
from livepuppet.errors import InputError

MAX_AUDIO_S = 3600.0


def read_audio(path: str | Path, rate: int = 16_000) -> np.ndarray:
    """Decode ``path`` → ``(n,) f32 [-1, 1]`` mono at ``rate`` Hz (channels mixed down, resampled)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"audio file {p} does not exist")
    chunks: list[np.ndarray] = []
    end = 0  # samples placed so far
    limit = int(MAX_AUDIO_S * rate)
    try:
        for pcm, start_s in AudioFeed(p, rate, channels=1).chunks():
            mono = pcm[0]
            start = round(start_s * rate)
            if start > end + 2:  # a gap (late start, lost packets): silence, so what follows stays in place
                chunks.append(np.zeros(start - end, np.float32))
                end = start
            elif start < end - 2:  # overlap (priming before 0, jitter): drop what is already there
                mono = mono[end - start:]
            chunks.append(mono)
            end += len(mono)
            if end > limit:
                raise InputError(f"{p} is longer than {MAX_AUDIO_S / 60:.0f} minutes: split it")
    except (av.FFmpegError, IndexError) as exc:
        raise InputError(f"{p} is not a readable audio file ({exc}): {AUDIO_HINT}") from exc
    if not chunks or end == 0:
        raise InputError(f"{p} has no decodable audio")
    return np.clip(np.concatenate(chunks), -1.0, 1.0).astype(np.float32)
