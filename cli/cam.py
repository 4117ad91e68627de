"""``livepuppet cam``: a local camera drives the portrait; the avatar goes to a virtual camera (for video
calls) and/or a file. Same frame rings, engine job and pacing as the server, without the network."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livepuppet.streaming.server.puppet_job import PuppetJob


def _reset_on_enter(job: PuppetJob) -> None:
    """Each line typed on the terminal resets the driver's neutral (ends with stdin)."""
    from livepuppet.streaming.server.controls import Controls

    for _ in sys.stdin:
        job.control(Controls(reset_neutral=True))


def cmd_cam(args: argparse.Namespace) -> int:
    from livepuppet.cli.main import config_overrides
    from livepuppet.engine.clock import MonotonicClock
    from livepuppet.engine.config import load_config
    from livepuppet.engine.media.video_io import load_image
    from livepuppet.engine.pipeline import open_portrait
    from livepuppet.errors import InputError
    from livepuppet.streaming.devices.local_camera import CameraReader
    from livepuppet.streaming.devices.virtual_camera import (
        CameraDevice,
        RecordingCamera,
        VirtualCameraSink,
        open_virtual_camera,
    )
    from livepuppet.streaming.frame_ring import FrameRing
    from livepuppet.streaming.server.driver_pool import DriverPool
    from livepuppet.streaming.server.engine_worker import EngineWorker
    from livepuppet.streaming.server.metrics import ServerMetrics
    from livepuppet.streaming.server.puppet_job import PuppetJob
    from skimage import data

    if not args.virtual_camera and not args.output:
        raise InputError("say where the avatar goes: --virtual-camera (for video calls) and/or -o FILE.mp4")
    config = load_config(args.config, config_overrides(args))
    source = open_portrait(load_image(args.source) if args.source else data.astronaut(), config)
    size, fps = config.render.crop_size, config.server.fps
    clock = MonotonicClock()
    devices: list[CameraDevice] = []
    if args.virtual_camera:
        devices.append(open_virtual_camera(size, size, fps, None if args.virtual_camera == "auto"
                                           else args.virtual_camera))
    if args.output:
        devices.append(RecordingCamera(args.output, size, size, fps, clock.now_ns))

    worker = EngineWorker(1)
    input_ring = FrameRing(on_write=worker.notify)
    drivers = DriverPool(config, 1)
    job = PuppetJob("cam", source, config, clock, ServerMetrics.create(), input_ring, drivers)
    sinks = []
    for device in devices:
        ring = FrameRing()
        job.add_output(ring)
        sinks.append(VirtualCameraSink(ring, device, source.crop))
    reader = CameraReader(args.camera, input_ring, clock, loop=args.loop)
    worker.add(job)
    if sys.stdin.isatty() and not args.quiet:
        print("press Enter to take your current face as the neutral")
        # The page's "Reset neutral" button and the API send the same control.
        threading.Thread(target=_reset_on_enter, args=(job,), name="cam-keys", daemon=True).start()
    start = time.monotonic()
    try:
        while not reader.done.wait(1.0):
            elapsed = time.monotonic() - start
            if not args.quiet:
                print(f"\r{elapsed:6.1f} s  camera {reader.frames} frames  avatar {job.stats.fps():4.1f} fps  "
                      f"face {'yes' if job.stats.face_found else 'no '}", end="", flush=True)
            if args.duration and elapsed >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
        worker.remove(job)
        worker.close()
        job.close()
        drivers.close()
        for sink in sinks:
            sink.close()
    if not args.quiet:
        print()
    if reader.error:
        raise InputError(reader.error)
    print(f"camera frames {reader.frames}, avatar frames {job.stats.frames_out}, "
          f"sent {', '.join(str(s.sent) for s in sinks)}")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cam = sub.add_parser("cam", parents=[common], help="drive the portrait from a local camera; output to a "
                                                        "virtual camera and/or a file")
    cam.add_argument("--camera", default="0", help="camera device (0, /dev/video2) or a video file played live")
    cam.add_argument("--source", help="portrait (default: the bundled astronaut photo)")
    cam.add_argument("--virtual-camera", nargs="?", const="auto", metavar="DEVICE",
                     help="send the avatar to a virtual camera (pyvirtualcam; Linux needs v4l2loopback)")
    cam.add_argument("-o", "--output", help="also record the avatar to this MP4")
    cam.add_argument("--duration", type=float, help="stop after this many seconds")
    cam.add_argument("--loop", action="store_true", help="replay a video-file camera forever")
    cam.set_defaults(func=cmd_cam)
