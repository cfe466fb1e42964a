"""The cascade engine: image in, P(roadwork) out; knows nothing of bittensor. What the miner runs
when it serves: the engine, the tiers and their runtimes, batching, bounded image decoding, the
presets and the builtin models. The offline side (training, distillation, datasets, challenge
replay, calibration fitting) is `cascade.lab`, which the engine never imports (tests/test_layout.py)."""
