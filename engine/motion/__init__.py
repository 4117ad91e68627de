"""Motion: from tracks (estimator), files and scripts; the per-portrait rig, retargeting and filters."""
