"""The unified Hugging Face checkpoint ModelOpt exports, and what can be read back from it:
the quantization it declares and the KV cache's bytes per token."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# Bytes per cached K or V element. NVFP4 adds one FP8 scale per block of 16 values.
KV_BYTES_PER_ELEMENT = {"none": 2.0, "FP8": 1.0, "NVFP4": 0.5 + 1 / 16}


def export_checkpoint(model, processor, folder: Path) -> dict:
    """Write the quantized model (config.json, safetensors, hf_quant_config.json) and the processor
    (tokenizer, image processor, chat template) the runtimes need; return hf_quant_config.json."""
    from modelopt.torch.export import export_hf_checkpoint

    if not getattr(model.config, "architectures", None):  # export crashes on None
        model.config.architectures = [type(model).__name__]
    export_hf_checkpoint(model, export_dir=str(folder))
    processor.save_pretrained(str(folder))
    return json.loads((folder / "hf_quant_config.json").read_text())


def kv_bytes_per_token(config: dict, kv_cache_quant_algo: str | None) -> float:
    """K and V of every layer for one token of context, from a (VLM's) config.json."""
    text = config.get("text_config") or config
    heads = text["num_attention_heads"]
    kv_heads = text.get("num_key_value_heads") or heads
    head_dim = text.get("head_dim") or text["hidden_size"] // heads
    return 2 * text["num_hidden_layers"] * kv_heads * head_dim * KV_BYTES_PER_ELEMENT[kv_cache_quant_algo or "none"]


def kv_cache_summary(folder: Path) -> dict:
    """KV bytes per token of the exported checkpoint against the same model in bf16."""
    config = json.loads((folder / "config.json").read_text())
    quant = json.loads((folder / "hf_quant_config.json").read_text())["quantization"]
    algo = quant.get("kv_cache_quant_algo")
    quantized, bf16 = kv_bytes_per_token(config, algo), kv_bytes_per_token(config, None)
    return {"kv_cache_quant_algo": algo, "bytes_per_token": quantized, "bf16_bytes_per_token": bf16,
            "ratio_to_bf16": quantized / bf16}


def folder_digest(folder: Path) -> str:
    """sha256 over the weight and config files of a model folder (names and contents, sorted)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (".safetensors", ".bin", ".json"):
            digest.update(path.relative_to(folder).as_posix().encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()
