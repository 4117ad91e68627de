"""Which container and codecs an output file gets, chosen from its extension."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livepuppet.errors import InputError

H264 = "libx264"


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """An output container with its video and audio encoders (FFmpeg names)."""

    container: str  # FFmpeg muxer name
    video_codec: str
    audio_codec: str
    video_codecs: tuple[str, ...]  # encoders this container takes (a configured codec must be one of them)


FORMATS = {
    ".mp4": OutputFormat("mp4", H264, "aac", (H264, "libx265", "mpeg4", "libvpx-vp9")),
    ".m4v": OutputFormat("mp4", H264, "aac", (H264, "libx265", "mpeg4")),
    ".mov": OutputFormat("mov", H264, "aac", (H264, "libx265", "mpeg4")),
    ".mkv": OutputFormat("matroska", H264, "aac", (H264, "libx265", "mpeg4", "libvpx", "libvpx-vp9")),
    ".webm": OutputFormat("webm", "libvpx-vp9", "libopus", ("libvpx", "libvpx-vp9")),
}


def output_format(path: str | Path, codec: str | None = None) -> OutputFormat:
    """The format for ``path``'s extension; ``codec`` (e.g. ``output.codec``) replaces the default video
    encoder where the container takes it. Unknown extensions raise a one-line :class:`InputError`."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".gif":
        raise InputError(f"{p}: GIF output is not supported; write .mp4, .mov, .mkv or .webm (convert it after)")
    fmt = FORMATS.get(suffix)
    if fmt is None:
        what = f"extension {suffix!r}" if suffix else "no extension"
        raise InputError(f"output {p} has {what}: end it in .mp4, .mov, .mkv or .webm")
    if codec and codec != fmt.video_codec and codec in fmt.video_codecs:
        return OutputFormat(fmt.container, codec, fmt.audio_codec, fmt.video_codecs)
    return fmt
