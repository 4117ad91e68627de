"""The neural renderer: an implicit-keypoint warping + generator network compatible with the publicly
released LivePortrait checkpoints (which users bring; nothing is downloaded). Needs torch; the default mesh
pipeline never imports this package."""
