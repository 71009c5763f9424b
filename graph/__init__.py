"""coinfer.graph: graph IR, model zoo, ONNX import, planners, executor and CLI."""
