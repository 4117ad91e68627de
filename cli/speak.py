"""``livepuppet speak``: a portrait says an audio file (offline), the audio muxed into the video."""

from __future__ import annotations

import argparse
import math

TAIL_S = 0.4  # frames after the audio ends, so the mouth closes on screen


def cmd_speak(args: argparse.Namespace) -> int:
    from livepuppet.cli.main import config_overrides
    from livepuppet.engine.config import load_config
    from livepuppet.engine.media.audio_io import read_audio
    from livepuppet.engine.media.video_io import VideoWriter, even_size, load_image
    from livepuppet.engine.pipeline import open_portrait
    from livepuppet.engine.speech.generator import SEGMENT_END, AudioChunk, TalkingHeadGenerator, TalkStep
    from livepuppet.engine.speech.mouth_model import SAMPLE_RATE, AudioMouthModel
    from skimage import data
    from tqdm import tqdm

    overrides = config_overrides(args)
    if args.emotion:
        overrides.append(f"speech.emotion={args.emotion!r}")
    config = load_config(args.config, overrides)
    pcm = read_audio(args.audio, SAMPLE_RATE)
    model = AudioMouthModel.load(args.model or config.speech.model or None)
    image = load_image(args.source) if args.source else data.astronaut()
    source = open_portrait(image, config)
    fps = config.speech.fps
    generator = TalkingHeadGenerator(source, config, model, fps=fps, audio_rate=SAMPLE_RATE, full_frames=not args.crop)
    duration = len(pcm) / SAMPLE_RATE
    count = int(math.ceil(duration * fps)) + int(round(TAIL_S * fps))
    pixels = source.crop if args.crop else image
    width, height = even_size(pixels.shape[1], pixels.shape[0], config.output.max_side)
    chunk = SAMPLE_RATE  # one second of audio at a time: the generator never holds much more than that
    with VideoWriter(args.output, width, height, fps, config.output.codec, config.output.crf,
                     audio_from=args.audio) as writer:
        bar = tqdm(total=count, desc="speak", unit="frame", disable=args.quiet, dynamic_ncols=True)

        def write(step: TalkStep) -> None:
            writer.write(step.video.pixels if args.crop else step.video.full)  # type: ignore[arg-type]
            bar.update()

        for i in range(0, len(pcm), chunk):
            generator.push_audio(AudioChunk(pcm[i:i + chunk], SAMPLE_RATE))
            while generator.ready():
                write(generator.next_step())  # type: ignore[arg-type]
        generator.push_audio(SEGMENT_END)
        while not generator.idle():  # the last slices, then the segment's end
            write(generator.next_step())  # type: ignore[arg-type]
        for _ in range(int(round(TAIL_S * fps))):  # the mouth closes on screen
            write(generator.next_step())  # type: ignore[arg-type]
        bar.close()
        count = bar.n
    print(f"wrote {args.output} ({count} frames, {fps:g} fps, {width}×{height}, {duration:.1f} s of speech)")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    speak = sub.add_parser("speak", parents=[common], help="make a portrait say an audio file (offline)")
    speak.add_argument("--source", help="portrait (default: the bundled astronaut photo)")
    speak.add_argument("--audio", required=True, help="speech audio (WAV, MP3, OGG, FLAC, M4A, …)")
    speak.add_argument("-o", "--output", required=True)
    speak.add_argument("--emotion", choices=("neutral", "happy", "sad", "surprised", "angry"))
    speak.add_argument("--model", help="audio→mouth ONNX model (default: speech.model, else the shipped one)")
    speak.add_argument("--crop", action="store_true", help="write the animated face crop only")
    speak.set_defaults(func=cmd_speak)
