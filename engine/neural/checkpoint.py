"""Build the five networks and load a user's directory of LivePortrait checkpoints, strictly.

A directory holds the public release's files (flat, or in its ``base_models/`` and ``retargeting_models/``
sub-folders). A distilled student's directory holds the same files plus ``livepuppet_model.json`` with its
sizes, so a student is selected exactly like the teacher (``render.weights = DIR``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from livepuppet.engine.neural.appearance import AppearanceFeatureExtractor
from livepuppet.engine.neural.arch import NeuralArch, load_arch_json, save_arch_json
from livepuppet.engine.neural.motion_extractor import MotionExtractor
from livepuppet.engine.neural.spade_generator import SpadeGenerator
from livepuppet.engine.neural.stitching import CHECKPOINT_KEYS, RetargetingMlp
from livepuppet.engine.neural.warping import WarpingNetwork
from livepuppet.errors import InputError
from torch import nn

MODEL_JSON = "livepuppet_model.json"
STITCHING_FILE = "stitching_retargeting_module.pth"
NETWORK_FILES = {
    "appearance_feature_extractor": "appearance_feature_extractor.pth",
    "motion_extractor": "motion_extractor.pth",
    "warping_module": "warping_module.pth",
    "spade_generator": "spade_generator.pth",
}
SUBFOLDERS = ("", "base_models", "retargeting_models")
WHERE_HELP = ("put LivePortrait's released checkpoint files (" + ", ".join([*NETWORK_FILES.values(), STITCHING_FILE])
              + ") in that directory, flat or in its base_models/ and retargeting_models/ sub-folders as released "
              "(pretrained_weights/liveportrait/), and pass it with --weights DIR (render.weights)")


@dataclass(frozen=True, slots=True)
class LivePortraitNets:
    """The networks of one model (teacher or student); all in eval mode after loading."""

    arch: NeuralArch
    appearance_feature_extractor: AppearanceFeatureExtractor
    motion_extractor: MotionExtractor
    warping_module: WarpingNetwork
    spade_generator: SpadeGenerator
    stitching: RetargetingMlp
    lip: RetargetingMlp
    eye: RetargetingMlp

    def named_networks(self) -> Iterator[tuple[str, nn.Module]]:
        """``(state-dict name, module)`` pairs, named as in the shapes file."""
        for name in NETWORK_FILES:
            yield name, getattr(self, name)
        for attr, key in CHECKPOINT_KEYS.items():
            yield f"stitching_retargeting_module[{key}]", getattr(self, attr)

    def to(self, device: torch.device | str) -> LivePortraitNets:
        for _, module in self.named_networks():
            module.to(device)
        return self

    def eval(self) -> LivePortraitNets:
        for _, module in self.named_networks():
            module.eval().requires_grad_(False)
        return self


def feature_size(arch: NeuralArch) -> tuple[int, int, int]:
    """The feature volume's ``(D, H, W)`` for the model's input side."""
    p = arch.appearance_feature_extractor_params
    side = arch.image_size // 2**p.num_down_blocks
    return (p.reshape_depth, side, side)


def build_networks(arch: NeuralArch | None = None) -> LivePortraitNets:
    """Randomly initialised networks of ``arch`` (default: the published sizes), in eval mode."""
    arch = arch or NeuralArch()
    size = feature_size(arch)
    s = arch.stitching_retargeting_module_params
    return LivePortraitNets(
        arch=arch,
        appearance_feature_extractor=AppearanceFeatureExtractor(arch.appearance_feature_extractor_params),
        motion_extractor=MotionExtractor(arch.motion_extractor_params),
        warping_module=WarpingNetwork(arch.warping_module_params, size),
        spade_generator=SpadeGenerator(arch.spade_generator_params),
        stitching=RetargetingMlp(s.stitching), lip=RetargetingMlp(s.lip), eye=RetargetingMlp(s.eye),
    ).eval()


def state_dict_shapes(nets: LivePortraitNets) -> dict[str, dict[str, list[int]]]:
    """Every state-dict key and shape, grouped like the published shapes file."""
    return {name: {k: list(v.shape) for k, v in module.state_dict().items()} for name, module in nets.named_networks()}


def _find(directory: Path, filename: str) -> Path:
    for sub in SUBFOLDERS:
        path = directory / sub / filename
        if path.is_file():
            return path
    raise InputError(f"missing {filename} in {directory}: {WHERE_HELP}")


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix that data-parallel training leaves on keys."""
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def _load_into(module: nn.Module, state: object, where: str) -> None:
    if not isinstance(state, Mapping):
        raise InputError(f"{where} does not hold a state dict; {WHERE_HELP}")
    state = _strip_prefix(state)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first {unexpected[0]!r})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} shape mismatches (first {k!r}: file {list(state[k].shape)}, "
                         f"model {list(own[k].shape)})")
        raise InputError(f"{where} does not match this model: {'; '.join(parts)}. Use the unmodified released "
                         f"LivePortrait (human) files, or a student directory with its {MODEL_JSON}")
    module.load_state_dict(state, strict=True)


def _read(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise InputError(f"cannot read checkpoint {path}: {exc}") from exc


def load_checkpoint_dir(directory: str | Path) -> LivePortraitNets:
    """Load every network from ``directory`` with strict key and shape checks; raise :class:`InputError`
    naming the missing or mismatched file and saying where the files go."""
    directory = Path(directory).expanduser()
    if not str(directory) or not directory.is_dir():
        raise InputError(f"neural renderer weights directory {str(directory)!r} not found: {WHERE_HELP}")
    json_path = directory / MODEL_JSON
    arch = load_arch_json(json_path) if json_path.is_file() else NeuralArch()
    paths = {name: _find(directory, filename) for name, filename in NETWORK_FILES.items()}
    stitch_path = _find(directory, STITCHING_FILE)
    nets = build_networks(arch)
    for name, path in paths.items():
        _load_into(getattr(nets, name), _read(path), str(path))
    bundle = _read(stitch_path)
    if not isinstance(bundle, Mapping):
        raise InputError(f"{stitch_path} does not hold the three retargeting state dicts; {WHERE_HELP}")
    for attr, key in CHECKPOINT_KEYS.items():
        if key not in bundle:
            raise InputError(f"{stitch_path} lacks the {key!r} state dict; {WHERE_HELP}")
        _load_into(getattr(nets, attr), bundle[key], f"{stitch_path}[{key}]")
    return nets.eval()


def save_checkpoint_dir(nets: LivePortraitNets, directory: str | Path, write_arch: bool = True,
                        extra: dict[str, object] | None = None) -> Path:
    """Write ``nets`` in the released file layout (flat) plus, if ``write_arch``, ``livepuppet_model.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, filename in NETWORK_FILES.items():
        torch.save(getattr(nets, name).state_dict(), directory / filename)
    torch.save({key: getattr(nets, attr).state_dict() for attr, key in CHECKPOINT_KEYS.items()},
               directory / STITCHING_FILE)
    if write_arch:
        save_arch_json(nets.arch, directory / MODEL_JSON, extra)
    return directory
