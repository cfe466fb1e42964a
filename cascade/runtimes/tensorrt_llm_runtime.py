"""A TensorRT-LLM engine in-process (`tensorrt_llm.LLM`), for checkpoints built by compression/.

Not exercised on the project's machines: tensorrt_llm cannot be installed there (see FACTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from . import RuntimeUnavailable
from .prompting import PLACEHOLDER, prompt_pattern


class TensorRTLLMRuntime:
    def __init__(self, model_dir: str, kv_cache_dtype: str = "auto", prompt_template: str | None = None, top_logprobs: int = 20):
        try:
            from tensorrt_llm import LLM, SamplingParams
            from tensorrt_llm.llmapi import KvCacheConfig
        except ImportError as exc:
            raise RuntimeUnavailable(
                f"tensorrt_llm is not importable ({exc}): install TensorRT-LLM for your CUDA version "
                "(NVIDIA's wheels or container), or use the sglang runtime"
            ) from None
        self.name = "tensorrt-llm (in-process)"
        self.pattern = prompt_pattern(model_dir, prompt_template)
        self.sampling = SamplingParams(max_tokens=1, temperature=0.0, logprobs=top_logprobs)
        self.llm = LLM(model=model_dir, kv_cache_config=KvCacheConfig(dtype=kv_cache_dtype))

    def first_token_logprobs(self, images: Sequence[Image.Image], prompt: str) -> list[dict[str, float]]:
        text = self.pattern.replace(PLACEHOLDER, prompt)
        requests = [{"prompt": text, "multi_modal_data": {"image": [image.convert("RGB")]}} for image in images]
        results = []
        for output in self.llm.generate(requests, self.sampling):
            first = output.outputs[0].logprobs[0]  # token id -> Logprob
            results.append({self.llm.tokenizer.decode([token_id]): float(lp.logprob) for token_id, lp in first.items()})
        return results
