"""Architecture sizes of the five networks, as frozen dataclasses (the published model's values by default).

The field names follow the public ``models.yaml`` so a checkpoint directory's JSON (a distilled student's)
reads straight in; unknown keys are errors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from livepuppet.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AppearanceParams:
    """Appearance feature extractor F: image → feature volume ``(B, C, D, H/4, W/4)``."""

    image_channel: int = 3
    block_expansion: int = 64
    num_down_blocks: int = 2
    max_features: int = 512
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6


@dataclass(frozen=True, slots=True)
class MotionParams:
    """Motion extractor M (ConvNeXt-V2 backbone): image → keypoints, pose bins, expression, t, scale."""

    num_kp: int = 21
    backbone: str = "convnextv2_tiny"
    num_bins: int = 66
    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)


@dataclass(frozen=True, slots=True)
class DenseMotionParams:
    """The warping module's dense motion network (3-D hourglass predicting masks and occlusion)."""

    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_depth: int = 16
    compress: int = 4


@dataclass(frozen=True, slots=True)
class WarpingParams:
    """Warping module W: feature volume + source/driving keypoints → 2-D feature map for the generator."""

    num_kp: int = 21
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channel: int = 32
    estimate_occlusion_map: bool = True
    dense_motion_params: DenseMotionParams = field(default_factory=DenseMotionParams)


@dataclass(frozen=True, slots=True)
class GeneratorParams:
    """SPADE generator G: ``(B, 2^n·E, 64, 64)`` feature → ``(B, 3, 512, 512)`` image."""

    upscale: int = 2
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    num_middle_blocks: int = 6  # the published model has 6; students may use fewer
    out_channels: int = 64
    spade_hidden: int = 128  # hidden width of every SPADE modulation branch (published: 128)


@dataclass(frozen=True, slots=True)
class MlpParams:
    """One stitching/retargeting MLP."""

    input_size: int
    hidden_sizes: tuple[int, ...]
    output_size: int


@dataclass(frozen=True, slots=True)
class StitchingParams:
    """The three MLPs of the stitching/retargeting checkpoint."""

    stitching: MlpParams = MlpParams(126, (128, 128, 64), 65)
    lip: MlpParams = MlpParams(65, (128, 128, 64), 63)
    eye: MlpParams = MlpParams(66, (256, 256, 128, 128, 64), 63)


@dataclass(frozen=True, slots=True)
class NeuralArch:
    """All five networks' sizes; ``NeuralArch()`` is the published LivePortrait (human) model."""

    appearance_feature_extractor_params: AppearanceParams = AppearanceParams()
    motion_extractor_params: MotionParams = MotionParams()
    warping_module_params: WarpingParams = WarpingParams()
    spade_generator_params: GeneratorParams = GeneratorParams()
    stitching_retargeting_module_params: StitchingParams = StitchingParams()
    image_size: int = 256  # side of the networks' input crops (not in models.yaml; students may shrink it)

    @property
    def num_kp(self) -> int:
        return self.motion_extractor_params.num_kp

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NeuralArch:
        """From a (possibly partial) dict shaped like ``models.yaml``'s ``model_params``; unknown keys fail."""
        return _build(cls, data, "")


def _build(cls: type[T], data: dict[str, Any], prefix: str) -> T:
    if not isinstance(data, dict):
        raise InputError(f"model config {prefix or 'root'} must be an object")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"unknown model config key {prefix}{unknown[0]}; known: {', '.join(sorted(known))}")
    defaults = cls()  # type: ignore[call-arg]
    values: dict[str, Any] = {}
    for name, value in data.items():
        current = getattr(defaults, name)
        if isinstance(current, MlpParams):
            values[name] = _mlp(value)
        elif is_dataclass(current):
            values[name] = _build(type(current), value, f"{prefix}{name}.")
        elif isinstance(current, tuple):
            values[name] = tuple(value)
        else:
            values[name] = value
    return cls(**values)


def _mlp(data: dict[str, Any]) -> MlpParams:
    return MlpParams(int(data["input_size"]), tuple(data["hidden_sizes"]), int(data["output_size"]))


def load_arch_json(path: Path) -> NeuralArch:
    """Read a model config JSON (``{"config": {...}}`` or the bare config) written by :func:`save_arch_json`."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the model config {path}: {exc}") from exc
    return NeuralArch.from_dict(raw.get("config", raw))


def save_arch_json(arch: NeuralArch, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``{"config": arch, **extra}`` as JSON (a student directory's ``livepuppet_model.json``)."""
    path.write_text(json.dumps({"config": arch.to_dict(), **(extra or {})}, indent=2))


def tiny_arch(image_size: int = 64, num_kp: int = 21) -> NeuralArch:
    """A few-thousand-parameter model of the same structure (tests, the benchmark's dry run, CPU demos)."""
    k3 = 3 * num_kp
    mlps = StitchingParams(stitching=MlpParams(2 * k3, (32, 32), k3 + 2), lip=MlpParams(k3 + 2, (32, 32), k3),
                           eye=MlpParams(k3 + 3, (32, 32), k3))
    return NeuralArch(
        appearance_feature_extractor_params=AppearanceParams(block_expansion=8, max_features=32, reshape_channel=8,
                                                             reshape_depth=4, num_resblocks=1),
        motion_extractor_params=MotionParams(num_kp=num_kp, depths=(1, 1, 1, 1), dims=(8, 16, 24, 32)),
        warping_module_params=WarpingParams(num_kp=num_kp, block_expansion=8, max_features=32, reshape_channel=8,
                                            dense_motion_params=DenseMotionParams(block_expansion=8, max_features=32,
                                                                                  num_blocks=2, reshape_depth=4,
                                                                                  compress=2)),
        spade_generator_params=GeneratorParams(block_expansion=8, max_features=32, num_middle_blocks=1,
                                               out_channels=8, spade_hidden=16),
        stitching_retargeting_module_params=mlps,
        image_size=image_size,
    )
