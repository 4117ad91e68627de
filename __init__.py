"""livepuppet: one portrait photo becomes a live, talking, moving face.

The layers live in sub-packages: ``livepuppet.engine`` (tracking, retargeting, rendering, pipeline),
``livepuppet.kernels`` (image kernels, CPU twins of the GPU ones), ``livepuppet.streaming`` (server),
``livepuppet.export`` (ONNX/TensorRT) and ``livepuppet.cli`` (the command line).
"""

import logging

__version__ = "0.1.0"
__all__ = ["__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
