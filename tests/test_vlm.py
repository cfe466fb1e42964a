import base64
import io
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch
import yaml
from PIL import Image

from cascade.config import build_cascade, load_config
from cascade.runtimes import RuntimeUnavailable
from cascade.runtimes.sglang_runtime import SGLangHTTPRuntime
from cascade.runtimes.transformers_runtime import TransformersRuntime
from cascade.scenes import generate_scene
from cascade.tiers.vlm import DEFAULT_PROMPT, VLMJudgeTier, yes_probability
from compression.tiny import build_tiny_vlm


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny-llava")


def test_yes_probability_sums_variants_and_ignores_other_tokens():
    p = yes_probability({"Yes": math.log(0.3), " yes": math.log(0.1), "No": math.log(0.2), "maybe": math.log(0.4)})
    assert p == pytest.approx(0.4 / 0.6)
    with pytest.raises(ValueError, match="neither yes nor no"):
        yes_probability({"maybe": -0.1})


def test_judge_reads_p_yes_from_the_models_next_token_logits(tiny_vlm):
    runtime = TransformersRuntime(tiny_vlm)
    tier = VLMJudgeTier(runtime, "judge")
    image = generate_scene(1, roadwork=True).image
    probability = tier.predict([image])[0].probability

    # the same number straight from the model: softmax over the four yes/no tokens at the last position
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_vlm)
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm).eval()
    text = f"USER: <image> {DEFAULT_PROMPT} ASSISTANT:"
    with torch.inference_mode():
        logits = model(**processor(images=[image], text=[text], return_tensors="pt")).logits[0, -1]
    vocab = processor.tokenizer.get_vocab()
    yes = torch.exp(logits[[vocab["yes"], vocab["Yes"]]]).sum()
    no = torch.exp(logits[[vocab["no"], vocab["No"]]]).sum()
    assert probability == pytest.approx(float(yes / (yes + no)), rel=1e-4)
    assert 0.0 < probability < 1.0


def test_batched_judging_equals_one_by_one(tiny_vlm):
    tier = VLMJudgeTier(TransformersRuntime(tiny_vlm), "judge")
    images = [generate_scene(i).image for i in range(3)] + [Image.new("RGB", (500, 90), (250, 120, 0))]
    together = [o.probability for o in tier.predict(images)]
    alone = [tier.predict([image])[0].probability for image in images]
    assert together == pytest.approx(alone, rel=1e-4)


def test_a_vlm_tier_from_yaml_joins_the_cascade(tiny_vlm, tmp_path):
    config_file = tmp_path / "with-judge.yaml"
    config_file.write_text(yaml.safe_dump({"tiers": [
        {"name": "lite0", "kind": "classifier", "model": "builtin:efficientnet-lite0-roadwork", "exit_below": 0.02, "exit_above": 0.98},
        {"name": "judge", "kind": "vlm", "runtime": "transformers", "model": str(tiny_vlm)},
    ]}))
    cascade = build_cascade(load_config(str(config_file)))
    result = cascade.predict(generate_scene(5).image)
    assert 0.0 <= result.probability <= 1.0 and result.settled_by in ("lite0", "judge")


class FakeSGLang(BaseHTTPRequestHandler):
    """Answers /generate in the shape SGLang's native API uses, and keeps the requests."""

    requests = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeSGLang.requests.append((self.path, body))
        answers = [{"text": "Yes", "meta_info": {"output_top_logprobs": [[
            [math.log(0.6), 9, "Yes"], [math.log(0.2), 7, " no"], [math.log(0.1), 3, "The"]]]}} for _ in body["text"]]
        data = json.dumps(answers).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_sglang_http_runtime_speaks_the_native_generate_api():
    server = HTTPServer(("127.0.0.1", 0), FakeSGLang)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runtime = SGLangHTTPRuntime(f"http://127.0.0.1:{server.server_port}", "<|user|><image>{prompt}<|assistant|>")
        tier = VLMJudgeTier(runtime, "remote-judge")
        outputs = tier.predict([generate_scene(1).image, generate_scene(2).image])
    finally:
        server.shutdown()
    assert [o.probability for o in outputs] == pytest.approx([0.75, 0.75])
    path, body = FakeSGLang.requests[-1]
    assert path == "/generate" and body["text"] == [f"<|user|><image>{DEFAULT_PROMPT}<|assistant|>"] * 2
    assert body["sampling_params"] == {"max_new_tokens": 1, "temperature": 0.0}
    assert body["return_logprob"] is True and body["top_logprobs_num"] == 20 and body["return_text_in_logprobs"] is True
    Image.open(io.BytesIO(base64.b64decode(body["image_data"][0]))).verify()


def test_tensorrt_llm_runtime_says_how_to_get_it(tmp_path):
    from cascade.runtimes.tensorrt_llm_runtime import TensorRTLLMRuntime

    with pytest.raises(RuntimeUnavailable, match="install TensorRT-LLM"):
        TensorRTLLMRuntime(str(tmp_path))
