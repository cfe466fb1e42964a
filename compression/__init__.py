"""Offline builds of the heavy tiers (ModelOpt quantization, TensorRT-LLM engines, SGLang
arguments), driven by the recipes in compression/recipes/ (`natix-miner build`)."""
