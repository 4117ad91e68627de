"""Export the trained network to ONNX (TorchScript exporter: GRU → one ONNX GRU op) with runtime metadata."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from livepuppet.engine.speech.features import N_MELS
from livepuppet.engine.speech.visemes import VISEMES
from livepuppet.export.audio.model import AudioMouthNet, ExportWrapper

OPSET = 17


def export_onnx(net: AudioMouthNet, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``net`` as ONNX (inputs ``mel``, ``h0``; outputs ``probs``, ``mouth``, ``h1``); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportWrapper(net).eval()
    cfg = net.config
    mel = torch.zeros(1, 20 + cfg.context, N_MELS)
    h0 = torch.zeros(1, 1, cfg.hidden)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and batch-size notes
        torch.onnx.export(
            wrapper,
            (mel, h0),
            str(out),
            dynamo=False,
            opset_version=OPSET,
            input_names=["mel", "h0"],
            output_names=["probs", "mouth", "h1"],
            dynamic_axes={"mel": {1: "frames"}, "probs": {1: "steps"}, "mouth": {1: "steps"}},
        )
    model = onnx.load(str(out))
    metadata = {
        "context_frames": str(cfg.context),
        "lookahead_frames": str(cfg.lookahead),
        "hidden": str(cfg.hidden),
        "n_mels": str(N_MELS),
        "visemes": ",".join(VISEMES),
        "mouth": "jaw_open,lip_width,lip_round,lip_close,voiced",
        "features": "log-mel 16 kHz, 25 ms Hann window ending at each 10 ms hop, 512-pt FFT, 40 HTK bands 60-7600 Hz",
        **(extra_metadata or {}),
    }
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "livepuppet train-audio"
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def torch_reference(net: AudioMouthNet, mel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Torch outputs for ``mel (T + context, 40)``: probs ``(T, 15)`` and mouth ``(T, 5)``, to check the export."""
    with torch.no_grad():
        probs, mouth, _ = ExportWrapper(net).eval()(torch.from_numpy(mel)[None], torch.zeros(1, 1, net.config.hidden))
    return probs[0].numpy(), mouth[0].numpy()
