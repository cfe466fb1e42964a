"""SGLang, in-process (`sglang.Engine`) or over HTTP (a server, or SGLang's router in front of
several). Both speak SGLang's native generate API, so requests and answers are shaped alike."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from collections.abc import Sequence

from PIL import Image

from . import RuntimeUnavailable
from .prompting import PLACEHOLDER, prompt_pattern


def _jpeg_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=95)
    return base64.b64encode(buffer.getvalue()).decode()


def generate_request(prompt_text: str, images: Sequence[Image.Image], top_logprobs: int) -> dict:
    """One batched request: one answer token per image, greedy, with its top log-probabilities."""
    return {
        "text": [prompt_text] * len(images),
        "image_data": [_jpeg_b64(image) for image in images],
        "sampling_params": {"max_new_tokens": 1, "temperature": 0.0},
        "return_logprob": True,
        "top_logprobs_num": top_logprobs,
        "return_text_in_logprobs": True,
    }


def parse_generate_response(outputs) -> list[dict[str, float]]:
    """meta_info.output_top_logprobs[0] holds (logprob, token_id, text) for the first token."""
    outputs = outputs if isinstance(outputs, list) else [outputs]
    parsed = []
    for output in outputs:
        first = output["meta_info"]["output_top_logprobs"][0]
        parsed.append({text: float(logprob) for logprob, _token_id, text in first if text is not None})
    return parsed


class SGLangRuntime:
    """`sglang.Engine(**server_args)` in this process: the GPU stays with the miner."""

    def __init__(self, server_args: dict, prompt_template: str | None = None, top_logprobs: int = 20):
        try:
            import sglang
        except ImportError as exc:
            raise RuntimeUnavailable(
                f"sglang is not importable ({exc}): on a CUDA machine, pip install -e '.[gpu]'"
            ) from None
        self.name = "sglang (in-process)"
        self.top_logprobs = top_logprobs
        self.pattern = prompt_pattern(server_args["model_path"], prompt_template)
        self.engine = sglang.Engine(**server_args)

    def first_token_logprobs(self, images: Sequence[Image.Image], prompt: str) -> list[dict[str, float]]:
        request = generate_request(self.pattern.replace(PLACEHOLDER, prompt), images, self.top_logprobs)
        request["prompt"] = request.pop("text")  # Engine.generate names it prompt
        return parse_generate_response(self.engine.generate(**request))


class SGLangHTTPRuntime:
    """POST {url}/generate: an SGLang server, or the router spreading load over several."""

    def __init__(self, url: str, pattern: str, timeout_s: float = 8.0, top_logprobs: int = 20):
        self.name = f"sglang over HTTP ({url})"
        self.url = url.rstrip("/") + "/generate"
        self.pattern, self.timeout_s, self.top_logprobs = pattern, timeout_s, top_logprobs

    def first_token_logprobs(self, images: Sequence[Image.Image], prompt: str) -> list[dict[str, float]]:
        body = json.dumps(generate_request(self.pattern.replace(PLACEHOLDER, prompt), images, self.top_logprobs)).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return parse_generate_response(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{self.url} answered {exc.code}: {exc.read()[:200]!r}") from None
