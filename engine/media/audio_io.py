"""Reading speech audio from files (PyAV decodes every format FFmpeg knows), as mono float32."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from livepuppet.errors import InputError

MAX_AUDIO_S = 3600.0


def read_audio(path: str | Path, rate: int = 16_000) -> np.ndarray:
    """Decode ``path`` → ``(n,) f32 [-1, 1]`` mono at ``rate`` Hz (channels mixed down, resampled)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"audio file {p} does not exist")
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(p)) as container:
            if not container.streams.audio:
                raise InputError(f"{p} has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                if sum(len(c) for c in chunks) > MAX_AUDIO_S * rate:
                    raise InputError(f"{p} is longer than {MAX_AUDIO_S / 60:.0f} minutes: split it")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (av.FFmpegError, IndexError) as exc:
        raise InputError(f"{p} is not a readable audio file ({exc}): use WAV, MP3, OGG, FLAC or M4A") from exc
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise InputError(f"{p} has no decodable audio")
    pcm = np.concatenate(chunks).astype(np.float32)
    return np.clip(pcm, -1.0, 1.0)
