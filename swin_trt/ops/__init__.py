"""The three Swin window ops: numerical reference (numpy) and their lowering to standard ONNX ops."""
