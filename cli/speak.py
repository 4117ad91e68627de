"""``livepuppet speak``: a portrait says an audio file (offline), the audio muxed into the video."""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
from livepuppet.errors import InputError

TAIL_S = 0.4  # frames after the audio ends, so the mouth closes on screen
AUDIO_RATE = 48_000  # the written file's audio (the generator resamples to the model's 16 kHz itself)


def cmd_speak(args: argparse.Namespace) -> int:
    """Stream the audio file through the talking-head generator into the writer: memory is flat in the clip
    length, and the file holds the generator's own audio slices, so picture and sound are in sync."""
    from livepuppet.cli.main import config_overrides
    from livepuppet.engine.config import load_config
    from livepuppet.engine.media.audio_mux import AudioFeed
    from livepuppet.engine.media.media_writer import MediaWriter
    from livepuppet.engine.media.video_io import even_size, load_image
    from livepuppet.engine.pipeline import open_portrait
    from livepuppet.engine.source import shrink_source
    from livepuppet.engine.speech.generator import SEGMENT_END, AudioChunk, TalkingHeadGenerator, TalkStep
    from livepuppet.engine.speech.mouth_model import AudioMouthModel
    from skimage import data
    from tqdm import tqdm

    overrides = config_overrides(args)
    if args.emotion:
        overrides.append(f"speech.emotion={args.emotion!r}")
    config = load_config(args.config, overrides)
    model = AudioMouthModel.load(args.model or config.speech.model or None)
    image = load_image(args.source) if args.source else data.astronaut()
    source = shrink_source(open_portrait(image, config), config.output.max_side)  # composited at output size
    fps = config.speech.fps
    generator = TalkingHeadGenerator(source, config, model, fps=fps, audio_rate=AUDIO_RATE, full_frames=not args.crop)
    pixels = source.crop if args.crop else source.image
    width, height = even_size(pixels.shape[1], pixels.shape[0], config.output.max_side)
    feed = AudioFeed(args.audio, AUDIO_RATE, 1)
    expected = _duration_s(args.audio)
    tail = int(round(TAIL_S * fps))
    with MediaWriter(args.output, width, height, fps, crf=config.output.crf, codec=config.output.codec,
                     audio_rate=AUDIO_RATE, audio_channels=1, inputs=(args.source, args.audio)) as writer:
        total = int(math.ceil(expected * fps)) + tail if expected else None
        bar = tqdm(total=total, desc="speak", unit="frame", disable=args.quiet, dynamic_ncols=True)

        count = 0

        def write(step: TalkStep | None) -> None:
            nonlocal count
            assert step is not None  # next_step() with idle frames always renders
            writer.write_frame(step.video.pixels if args.crop else step.video.full)  # type: ignore[arg-type]
            if step.audio is not None:
                writer.write_audio(step.audio.pcm, at_s=step.video.t)
            count += 1
            bar.update()

        pushed_s = 0.0
        for pcm, start_s in feed.chunks():
            mono = pcm[0]
            if start_s > pushed_s:  # audio that starts late (or after a gap) keeps its place: silence first
                silence = np.zeros(int(round((start_s - pushed_s) * AUDIO_RATE)), np.float32)
                generator.push_audio(AudioChunk(silence, AUDIO_RATE))
                pushed_s += len(silence) / AUDIO_RATE
            elif start_s + len(mono) / AUDIO_RATE <= pushed_s:
                continue  # overlaps what was pushed (priming before 0)
            generator.push_audio(AudioChunk(mono, AUDIO_RATE))
            pushed_s += len(mono) / AUDIO_RATE
            while generator.ready():
                write(generator.next_step())
        if pushed_s == 0.0:
            raise InputError(f"{args.audio} holds no audio to say")
        generator.push_audio(SEGMENT_END)
        while not generator.idle():  # the last slices, then the segment's end
            write(generator.next_step())
        for _ in range(tail):  # the mouth closes on screen
            write(generator.next_step())
        bar.close()
    if feed.damage.damaged:
        print(f"livepuppet: {feed.damage.name}: {feed.damage.packets} damaged packets skipped, "
              f"{feed.damage.missing_s * 1e3:.0f} ms missing (kept in place as silence)", file=sys.stderr)
    print(f"wrote {args.output} ({count} frames, {fps:g} fps, {width}×{height}, {pushed_s:.1f} s of speech)")
    return 0


def _duration_s(path: str) -> float:
    """The audio's stated length (for the progress bar), 0 when the file does not say; bad files fail later
    with a clear message."""
    import av

    try:
        with av.open(str(path)) as container:
            return float(container.duration or 0) / 1e6
    except (av.FFmpegError, OSError):
        return 0.0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    speak = sub.add_parser("speak", parents=[common], help="make a portrait say an audio file (offline)")
    speak.add_argument("--source", help="portrait (default: the bundled astronaut photo)")
    speak.add_argument("--audio", required=True, help="speech audio (WAV, MP3, OGG, FLAC, M4A, …)")
    speak.add_argument("-o", "--output", required=True)
    speak.add_argument("--emotion", choices=("neutral", "happy", "sad", "surprised", "angry"))
    speak.add_argument("--model", help="audio→mouth ONNX model (default: speech.model, else the shipped one)")
    speak.add_argument("--crop", action="store_true", help="write the animated face crop only")
    speak.set_defaults(func=cmd_speak)
