"""``livepuppet``: the command line. Errors a user can fix print one line and exit non-zero."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterable, Sequence

from livepuppet import __version__
from livepuppet.errors import LivepuppetError

log = logging.getLogger("livepuppet")

EXIT_USAGE = 2
CROP_HELP = "write the animated face crop instead of the full portrait"
EXIT_INPUT = 3
# Modules under cli/ that add subcommands: each has ``register(subparsers, common_parser)``.
COMMAND_MODULES: tuple[str, ...] = ("serve", "cam", "speak", "train_audio", "neural")


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


def cmd_demo(args: argparse.Namespace) -> int:
    from livepuppet.engine.media.video_io import VideoWriter, load_image
    from livepuppet.engine.motion.scripted_motion import scripted_clip
    from livepuppet.engine.pipeline import Animator, open_portrait
    from skimage import data

    config = _config(args)
    image = load_image(args.source) if args.source else data.astronaut()
    source = open_portrait(image, config)
    clip = scripted_clip(args.duration, config.output.fps)
    animator = Animator(source, config)
    frame_pixels = source.crop if args.crop else image
    width, height = _output_size(frame_pixels.shape, config.output.max_side)
    with VideoWriter(args.output, width, height, clip.fps, config.output.codec, config.output.crf) as writer:
        for motion in _progress(clip.motions, len(clip.motions), "demo", args.quiet):
            out = animator.animate(motion, full=not args.crop)
            writer.write(out.crop.pixels if args.crop else out.full.pixels)  # type: ignore[union-attr]
    print(f"wrote {args.output} ({len(clip.motions)} frames, {clip.fps:g} fps, {width}×{height})")
    return 0


def cmd_animate(args: argparse.Namespace) -> int:
    from livepuppet.engine.media.video_io import VideoWriter, load_image, probe_video, read_video
    from livepuppet.engine.motion.motion_file import load_motion
    from livepuppet.engine.pipeline import Animator, Driver, open_portrait
    from livepuppet.errors import InputError

    if bool(args.driving) == bool(args.motion):
        raise InputError("give exactly one of --driving VIDEO or --motion FILE")
    if args.reset_neutral_at and not args.driving:
        raise InputError("--reset-neutral-at needs --driving VIDEO (a motion file is already relative to its neutral)")
    resets = sorted(args.reset_neutral_at or [])
    config = _config(args)
    image = load_image(args.source)
    clip = load_motion(args.motion) if args.motion else None
    info = probe_video(args.driving) if args.driving else None
    source = open_portrait(image, config)
    animator = Animator(source, config)
    frame_pixels = source.crop if args.crop else image
    width, height = _output_size(frame_pixels.shape, config.output.max_side)
    fps = clip.fps if clip else info.fps  # type: ignore[union-attr]
    audio = args.driving if (info is not None and info.has_audio and not args.no_audio) else None
    count = 0
    with VideoWriter(args.output, width, height, fps, config.output.codec, config.output.crf,
                     audio_from=audio) as writer:
        if clip is not None:
            motions: Iterable = _progress(clip.motions, len(clip.motions), "animate", args.quiet)
            for motion in motions:
                out = animator.animate(motion, full=not args.crop)
                writer.write(out.crop.pixels if args.crop else out.full.pixels)  # type: ignore[union-attr]
                count += 1
        else:
            with Driver(config) as driver:
                frames = _progress(read_video(args.driving), info.frames, "animate", args.quiet)  # type: ignore[union-attr]
                for frame in frames:
                    while resets and frame.pts >= resets[0] * 1e9:  # the server's "reset neutral", at a time
                        resets.pop(0)
                        driver.calibrate()
                    out = animator.animate(driver.motion(frame), full=not args.crop)
                    writer.write(out.crop.pixels if args.crop else out.full.pixels)  # type: ignore[union-attr]
                    count += 1
    print(f"wrote {args.output} ({count} frames, {fps:g} fps, {width}×{height}{', with audio' if audio else ''})")
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    from livepuppet.engine.media.video_io import probe_video, read_video
    from livepuppet.engine.motion.motion_file import MotionClip, save_motion
    from livepuppet.engine.pipeline import Driver

    config = _config(args)
    info = probe_video(args.video)
    motions = []
    with Driver(config, keep_deltas=not args.no_deltas) as driver:
        for frame in _progress(read_video(args.video), info.frames, "track", args.quiet):
            motions.append(driver.motion(frame))
    found = sum(m.face_found for m in motions)
    save_motion(args.output, MotionClip(fps=info.fps, motions=tuple(motions)))
    print(f"wrote {args.output} ({len(motions)} frames, face found in {found})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livepuppet", description="One portrait photo becomes a live, moving face.")
    parser.add_argument("--version", action="version", version=f"livepuppet {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default="cpu-realtime", help="preset name (configs/) or a TOML file")
    common.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value, e.g. --set render.crop_size=256 (repeatable)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common.add_argument("--renderer", choices=("mesh", "neural"),
                        help="mesh (embedded default, CPU) or neural (LivePortrait-compatible, needs --weights)")
    common.add_argument("--weights", metavar="DIR", help="directory of LivePortrait checkpoints (or a student)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", parents=[common], help="animate the bundled portrait with a scripted motion")
    demo.add_argument("-o", "--output", default="demo.mp4")
    demo.add_argument("--source", help="portrait to use instead of the bundled one")
    demo.add_argument("--duration", type=float, default=8.0, help="seconds (default 8)")
    demo.add_argument("--crop", action="store_true", help=CROP_HELP)
    demo.set_defaults(func=cmd_demo)

    animate = sub.add_parser("animate", parents=[common], help="animate a portrait from a driving video or motion file")
    animate.add_argument("--source", required=True, help="portrait image (JPEG/PNG/WebP)")
    animate.add_argument("--driving", help="driving video; output has its frame rate and audio")
    animate.add_argument("--motion", help="motion file from 'livepuppet track'")
    animate.add_argument("-o", "--output", required=True)
    animate.add_argument("--crop", action="store_true", help=CROP_HELP)
    animate.add_argument("--no-audio", action="store_true", help="do not copy the driver's audio")
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
    os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe's C++ logging (read at its import)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
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
