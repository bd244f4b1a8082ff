"""nas-export: a trained (or untrained) network as ONNX or TorchScript, checked against PyTorch."""
