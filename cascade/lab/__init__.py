"""The cascade's lab: what makes and judges models offline. Training and distillation, the
validator's challenge pipelines, labelled datasets and the real-photo pool with roadwork pasted on,
detector training, calibration fitting, ONNX export. Uses the engine; the engine and the serving
path never import it."""
