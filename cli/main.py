"""``livepuppet``: the command line. Errors a user can fix print one line and exit non-zero."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from livepuppet import __version__
from livepuppet.errors import LivepuppetError

if TYPE_CHECKING:
    from livepuppet.engine.config import EngineConfig
    from livepuppet.engine.media.packets import DamageCount
    from livepuppet.engine.types import Motion

log = logging.getLogger("livepuppet")

EXIT_USAGE = 2
CROP_HELP = "write the animated face crop instead of the full portrait"
FACE_HELP = "which face of a group photo to animate, counted from the left from 0 (default: the largest)"
EXIT_INPUT = 3
MAX_DURATION_S = 3600.0
# Modules under cli/ that add subcommands: each has ``register(subparsers, common_parser)``.
COMMAND_MODULES: tuple[str, ...] = ("serve", "cam", "speak", "train_audio", "neural", "livekit_worker")


def _progress(items: Iterable, total: int | None, desc: str, quiet: bool) -> Iterable:
    from tqdm import tqdm

    return tqdm(items, total=total or None, desc=desc, unit="frame", disable=quiet, dynamic_ncols=True)


def config_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` values plus the shortcuts ``--renderer`` and ``--weights`` (which win)."""
    overrides = list(args.set)
    if getattr(args, "renderer", None):
        overrides.append(f"render.renderer={args.renderer!r}")
    if getattr(args, "weights", None):
        overrides.append(f"render.weights={str(args.weights)!r}")
    return overrides


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from livepuppet.engine.config import load_config

    return load_config(args.config, config_overrides(args))


def _output_size(image_shape: tuple[int, ...], max_side: int) -> tuple[int, int]:
    from livepuppet.engine.media.video_io import even_size

    return even_size(image_shape[1], image_shape[0], max_side)


def check_number(flag: str, value: float, lo: float, hi: float, unit: str = "") -> float:
    """A numeric flag must be finite and in ``(lo, hi]``; otherwise a one-line :class:`InputError`."""
    from livepuppet.errors import InputError

    if not (math.isfinite(value) and lo < value <= hi):
        raise InputError(f"{flag} must be a number greater than {lo:g} and at most {hi:g}{unit}, not {value}")
    return value


def check_face(value: int | None) -> int | None:
    from livepuppet.errors import InputError

    if value is not None and value < 0:
        raise InputError(f"--face must be 0 or more (faces are numbered from the left), not {value}")
    return value


def _damage_note(*counts: DamageCount) -> str:
    skipped = sum(c.packets for c in counts)
    missing_ms = 1e3 * sum(c.missing_s for c in counts)
    note = f", {skipped} damaged packet{'s' if skipped != 1 else ''} skipped" if skipped else ""
    return note + (f", {missing_ms:.0f} ms of audio missing (kept silent)" if missing_ms >= 1 else "")


def cmd_demo(args: argparse.Namespace) -> int:
    from livepuppet.engine.media.image_io import load_image
    from livepuppet.engine.media.media_writer import MediaWriter
    from livepuppet.engine.media.output_file import check_not_input
    from livepuppet.engine.motion.scripted_motion import scripted_clip
    from livepuppet.engine.pipeline import Animator, open_portrait
    from livepuppet.engine.source import shrink_source
    from skimage import data

    check_number("--duration", args.duration, 0.0, MAX_DURATION_S, " seconds")
    face = check_face(args.face)
    check_not_input(args.output, [args.source])
    config = _config(args)
    _output_format(args.output, config)
    image = load_image(args.source) if args.source else data.astronaut()
    source = shrink_source(open_portrait(image, config, face), config.output.max_side)  # composited at output size
    clip = scripted_clip(args.duration, config.output.fps)
    animator = Animator(source, config)
    frame_pixels = source.crop if args.crop else source.image
    width, height = _output_size(frame_pixels.shape, config.output.max_side)
    with MediaWriter(args.output, width, height, clip.fps, crf=config.output.crf, codec=config.output.codec,
                     inputs=[args.source]) as writer:
        for motion in _progress(clip.motions, len(clip.motions), "demo", args.quiet):
            out = animator.animate(motion, full=not args.crop)
            writer.write_frame(out.crop.pixels if args.crop else out.full.pixels)  # type: ignore[union-attr]
    print(f"wrote {args.output} ({len(clip.motions)} frames, {clip.fps:g} fps, {width}×{height})")
    return 0


def _output_format(path: str, config: EngineConfig) -> None:
    """Fail on an unsupported output extension before any slow work."""
    from livepuppet.engine.media.formats import output_format

    output_format(path, config.output.codec)


def cmd_animate(args: argparse.Namespace) -> int:
    from livepuppet.engine.media.audio_mux import WRITER_RATE, AudioCopier, AudioFeed, audio_channels
    from livepuppet.engine.media.image_io import load_image
    from livepuppet.engine.media.media_writer import MediaWriter
    from livepuppet.engine.media.output_file import check_not_input
    from livepuppet.engine.media.packets import DamageCount
    from livepuppet.engine.media.timing import at_constant_rate
    from livepuppet.engine.media.video_io import probe_video, read_video
    from livepuppet.engine.motion.motion_file import load_motion
    from livepuppet.engine.pipeline import Animator, Driver, open_portrait
    from livepuppet.engine.source import shrink_source
    from livepuppet.errors import InputError

    if bool(args.driving) == bool(args.motion):
        raise InputError("give exactly one of --driving VIDEO or --motion FILE")
    if args.fps is not None:
        check_number("--fps", args.fps, 0.0, 240.0)
    face = check_face(args.face)
    check_not_input(args.output, [args.source, args.driving, args.motion])
    if args.reset_neutral_at and not args.driving:
        raise InputError("--reset-neutral-at needs --driving VIDEO (a motion file is already relative to its neutral)")
    resets = sorted(args.reset_neutral_at or [])
    config = _config(args)
    _output_format(args.output, config)
    image = load_image(args.source)
    clip = load_motion(args.motion) if args.motion else None
    info = probe_video(args.driving) if args.driving else None
    source = shrink_source(open_portrait(image, config, face), config.output.max_side)  # composited at output size
    animator = Animator(source, config)
    frame_pixels = source.crop if args.crop else source.image
    width, height = _output_size(frame_pixels.shape, config.output.max_side)
    fps = float(args.fps or (clip.fps if clip else info.fps))  # type: ignore[union-attr]
    audio = args.driving if (info is not None and info.has_audio and not args.no_audio) else None
    channels = audio_channels(audio) if audio else 1
    video_damage = DamageCount(name=f"the video of {os.path.basename(args.driving or '')}")
    count = 0
    with contextlib.ExitStack() as stack, \
            MediaWriter(args.output, width, height, fps, crf=config.output.crf, codec=config.output.codec,
                        audio_rate=WRITER_RATE if audio else None, audio_channels=channels,
                        inputs=[args.source, args.driving, args.motion]) as writer:
        feed = AudioFeed(audio, WRITER_RATE, channels) if audio else None
        copier = AudioCopier(feed, writer) if feed else None
        if clip is not None:
            motions: Iterable[Motion] = clip.motions
            total = len(clip.motions)
        else:
            driver = Driver(config)
            stack.callback(driver.close)

            def driven() -> Iterator[Motion]:
                for frame in read_video(args.driving, video_damage):
                    while resets and frame.pts >= resets[0] * 1e9:  # the server's "reset neutral", at a time
                        resets.pop(0)
                        driver.calibrate()
                    yield driver.motion(frame)

            motions = driven()
            total = int(info.frames * fps / info.fps) if info and info.frames else 0  # type: ignore[union-attr]
        last: Motion | None = None
        pixels = None
        end_ns = int(info.duration_s * 1e9) if info is not None else None
        timed = at_constant_rate(motions, lambda m: m.pts, fps, end_ns)
        for k, motion in _progress(timed, total, "animate", args.quiet):
            if motion is not last:  # a held driver frame is written again, not rendered again
                out = animator.animate(motion, full=not args.crop)
                pixels = out.crop.pixels if args.crop else out.full.pixels  # type: ignore[union-attr]
                last = motion
            writer.write_frame(pixels)  # type: ignore[arg-type]
            if copier is not None:
                copier.advance((k + 1) / fps)
            count += 1
        if copier is not None:
            copier.finish()
    damage = _damage_note(video_damage, *([feed.damage] if feed else []))
    print(f"wrote {args.output} ({count} frames, {fps:g} fps, {width}×{height}{', with audio' if audio else ''}"
          f"{damage})")
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    from livepuppet.engine.media.output_file import AtomicFile
    from livepuppet.engine.media.packets import DamageCount
    from livepuppet.engine.media.video_io import probe_video, read_video
    from livepuppet.engine.motion.motion_file import MotionClip, save_motion
    from livepuppet.engine.pipeline import Driver

    config = _config(args)
    info = probe_video(args.video)
    damage = DamageCount(name=f"the video of {os.path.basename(args.video)}")
    motions = []
    with AtomicFile(args.output, inputs=[args.video]) as out:
        with Driver(config, keep_deltas=not args.no_deltas) as driver:
            for frame in _progress(read_video(args.video, damage), info.frames, "track", args.quiet):
                motions.append(driver.motion(frame))
        save_motion(out.temp, MotionClip(fps=info.fps, motions=tuple(motions)))
    found = sum(m.face_found for m in motions)
    print(f"wrote {args.output} ({len(motions)} frames, face found in {found}{_damage_note(damage)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livepuppet", description="One portrait photo becomes a live, moving face.")
    parser.add_argument("--version", action="version", version=f"livepuppet {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default="cpu-realtime", help="preset name (configs/) or a TOML file")
    common.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value, e.g. --set render.crop_size=256 (repeatable)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="show info logs, including MediaPipe/TFLite's native ones (hidden by default)")
    common.add_argument("--renderer", choices=("mesh", "neural"),
                        help="mesh (embedded default, CPU) or neural (LivePortrait-compatible, needs --weights)")
    common.add_argument("--weights", metavar="DIR", help="directory of LivePortrait checkpoints (or a student)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", parents=[common], help="animate the bundled portrait with a scripted motion")
    demo.add_argument("-o", "--output", default="demo.mp4")
    demo.add_argument("--source", help="portrait to use instead of the bundled one")
    demo.add_argument("--duration", type=float, default=8.0, help="seconds (default 8)")
    demo.add_argument("--crop", action="store_true", help=CROP_HELP)
    demo.add_argument("--face", type=int, help=FACE_HELP)
    demo.set_defaults(func=cmd_demo)

    animate = sub.add_parser("animate", parents=[common], help="animate a portrait from a driving video or motion file")
    animate.add_argument("--source", required=True, help="portrait image (JPEG/PNG/WebP)")
    animate.add_argument("--driving", help="driving video; output has its frame rate and audio")
    animate.add_argument("--motion", help="motion file from 'livepuppet track'")
    animate.add_argument("-o", "--output", required=True)
    animate.add_argument("--crop", action="store_true", help=CROP_HELP)
    animate.add_argument("--no-audio", action="store_true", help="do not copy the driver's audio")
    animate.add_argument("--face", type=int, help=FACE_HELP)
    animate.add_argument("--fps", type=float, help="output frame rate (default: the driver's or motion file's)")
    animate.add_argument("--reset-neutral-at", type=float, action="append", metavar="SECONDS",
                         help="take the driver's face at this time as its new neutral, eased in (repeatable); "
                              "cuts and new people are detected without it")
    animate.set_defaults(func=cmd_animate)

    track = sub.add_parser("track", parents=[common], help="extract face motion (no pixels) from a video")
    track.add_argument("video")
    track.add_argument("-o", "--output", required=True)
    track.add_argument("--no-deltas", action="store_true", help="store only pose and expression coefficients")
    track.set_defaults(func=cmd_track)

    for module_name in COMMAND_MODULES:
        importlib.import_module(f"livepuppet.cli.{module_name}").register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from livepuppet.cli.native_logs import quiet_native_logs

    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    if not verbose:
        os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe's C++ logging (read at its import)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    with quiet_native_logs(enabled=not verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except LivepuppetError as exc:
        print(f"livepuppet: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("livepuppet: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # e.g. the output folder is not writable
        print(f"livepuppet: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
