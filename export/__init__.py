"""Model export: ONNX and TensorRT builders, distillation, and training of the audio→mouth model (audio/)."""
