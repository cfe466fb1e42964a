"""A VLM in-process with transformers: CPU for tests and small models, CUDA when available."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .prompting import PLACEHOLDER, prompt_from_processor

ANSWERS = ("yes", "no")


class TransformersRuntime:
    def __init__(self, model_dir: str | Path, device: str = "cpu", prompt_template: str | None = None):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.name = f"transformers ({device})"
        self.processor = AutoProcessor.from_pretrained(str(model_dir))
        self.processor.tokenizer.padding_side = "left"  # the last position must be the answer's, in every row
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=dtype).to(device).eval()
        self.device = device
        self.pattern = prompt_template or prompt_from_processor(self.processor, PLACEHOLDER)
        self.answer_ids = answer_token_ids(self.processor.tokenizer)
        self._lock = threading.Lock()

    def first_token_logprobs(self, images: Sequence[Image.Image], prompt: str) -> list[dict[str, float]]:
        text = self.pattern.replace(PLACEHOLDER, prompt)
        inputs = self.processor(images=list(images), text=[text] * len(images), return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with self._lock, torch.inference_mode():
            logits = self.model(**inputs).logits[:, -1, :]
        return answer_logprobs(logits, self.answer_ids)


def answer_token_ids(tokenizer) -> dict[int, str]:
    """Every vocabulary entry that reads as yes or no (" Yes", "yes", "NO" ...): full log-probs
    are available in-process, so no answer variant is missed."""
    ids = {i: text for i in range(len(tokenizer)) if (text := tokenizer.decode([i])).strip().lower() in ANSWERS}
    if not ids:
        raise ValueError("the model's tokenizer has no yes/no tokens")
    return ids


def answer_logprobs(next_token_logits: torch.Tensor, answer_ids: dict[int, str]) -> list[dict[str, float]]:
    """Per row of next-token logits: answer text -> log-probability (variants of one text summed)."""
    logprobs = torch.log_softmax(next_token_logits.float(), dim=-1).cpu()
    results = []
    for row in logprobs:
        answers: dict[str, float] = {}
        for token_id, token_text in answer_ids.items():
            value = float(row[token_id])
            answers[token_text] = float(np.logaddexp(answers[token_text], value)) if token_text in answers else value
        results.append(answers)
    return results
