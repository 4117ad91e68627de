"""Real portraits for the benches, from registry packages (scikit-image's astronaut, matplotlib's Grace
Hopper), in the framings users bring: waist-up, head and shoulders, a close-up selfie."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib
import numpy as np
from skimage import data


def grace_hopper() -> np.ndarray:
    """Grace Hopper, head and shoulders (512×600 RGB, US Navy photo, public domain; matplotlib's sample data)."""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read {path}: reinstall matplotlib from PyPI")
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def framings() -> dict[str, np.ndarray]:
    """Name → portrait: the astronaut waist-up, Hopper head and shoulders, and a close-up of Hopper's face
    (512², the face filling the picture, as a webcam selfie)."""
    hopper = grace_hopper()
    close = cv2.resize(hopper[70:360, 120:410], (512, 512), interpolation=cv2.INTER_CUBIC)
    return {"astronaut, waist-up": data.astronaut(), "Hopper, head and shoulders": hopper,
            "Hopper, close-up": np.ascontiguousarray(close)}
