"""Model export: ONNX and TensorRT builders, distillation (see issue 5)."""
