"""A tiny LLaVA (CLIP vision tower + Llama) built from configs with random weights, and a
word-level tokenizer made on the spot: a real transformers VLM that needs no download.

Recipes name it as `model: tiny:llava` (the CPU smoke-test recipe); tests judge with it."""

from pathlib import Path

import torch

WORDS = ["<pad>", "<s>", "</s>", "<unk>", "<image>", "yes", "Yes", "no", "No", "USER:", "ASSISTANT:",
         "Does", "this", "street", "image", "show", "roadwork", "or", "construction", "?", "Answer", "."]
CHAT_TEMPLATE = (
    "{% for message in messages %}USER: {% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image> {% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %} ASSISTANT:{% endif %}"
)


# Dimensions: "tiny" for tests and the CPU recipe; "1b" has a CLIP ViT-L/14 vision tower and a
# Llama-3.2-1B-shaped language model (random weights), to time GPU builds at a realistic size.
SIZES = {
    "tiny": dict(vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, patch_size=32),
                 text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)),
    "1b": dict(vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, patch_size=14),
               text=dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8)),
}


def build_tiny_vlm(folder: Path, seed: int = 0, size: str = "tiny", device: str = "cpu") -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

    dims = SIZES[size]
    vocab = {word: i for i, word in enumerate(WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", extra_special_tokens={"image_token": "<image>"})
    vision = CLIPVisionConfig(image_size=224, projection_dim=32, **dims["vision"])
    text = LlamaConfig(vocab_size=len(WORDS), max_position_embeddings=1024, pad_token_id=0, **dims["text"])
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=vocab["<image>"],
                         vision_feature_layer=-1, vision_feature_select_strategy="default")
    torch.manual_seed(seed)
    with torch.device(device):  # initialising a 1B model on the GPU takes seconds, not minutes
        model = LlavaForConditionalGeneration(config).eval()
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}),
        tokenizer=fast, patch_size=dims["vision"]["patch_size"], vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
