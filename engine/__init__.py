"""The engine: tracking, motion, retargeting, rendering, compositing, and the pipeline joining them."""
