"""Offline builds of the heavy tiers (ModelOpt quantization, TensorRT-LLM engines, SGLang
arguments). Nothing here yet: the compression issue fills it. The cascade serves only the CPU
tiers in configs/ until then."""
