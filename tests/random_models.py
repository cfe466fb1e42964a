"""Image-text models (CLIP, SigLIP) built from configs with random weights, with a word-level
tokenizer made on the spot: real transformers models that need no download. Tests use the tiny
one; benchmarks time the same architectures as the checkpoints the zero-shot presets fetch."""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ["<pad>", "<s>", "</s>", "<unk>", "a", "photo", "of", "road", "roadwork", "construction", "street",
         "with", "traffic", "cones", "and", "barriers", "an", "ordinary", "without", "zone", "workers"]

_VIT_B = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, image_size=224)
# Dimensions of the hub checkpoints (their config.json), random weights; vocabularies cut to the
# tokenizer's words: the text tower runs once at load, so its size does not change the per-image cost.
ARCHITECTURES = {
    "tiny-clip": ("clip", dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=16),
                  dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2), 16),
    "openai/clip-vit-base-patch32": ("clip", dict(_VIT_B, patch_size=32),
                                     dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8), 512),
    "openai/clip-vit-base-patch16": ("clip", dict(_VIT_B, patch_size=16),
                                     dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8), 512),
    "google/siglip-base-patch16-224": ("siglip", dict(_VIT_B, patch_size=16),
                                       dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12), None),
}


def word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=64)


def build_image_text_model(folder: Path, architecture: str = "tiny-clip", seed: int = 0) -> Path:
    """Save a random-weight model of `architecture` (a key of ARCHITECTURES) with its processor."""
    family, vision, text, projection = ARCHITECTURES[architecture]
    text = dict(text, vocab_size=len(WORDS), max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    if family == "clip":
        from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection))
        size = vision["image_size"]
        image_processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
        processor = CLIPProcessor(image_processor=image_processor, tokenizer=word_tokenizer())
    else:
        from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        size = vision["image_size"]
        processor = SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": size, "width": size}), tokenizer=word_tokenizer())
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


SMOLVLM_256M = "HuggingFaceTB/SmolVLM-256M-Instruct"
SMOLVLM_CHAT = ("<|im_start|>{% for message in messages %}User:{% for part in message['content'] %}"
                "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}{% endfor %}"
                "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}")


def build_smolvlm_like(folder: Path, seed: int = 0, image_splitting: bool = True) -> Path:
    """SmolVLM-256M's architecture (Idefics3: a SigLIP-B/16 512 px vision tower, pixel shuffle 4,
    a 30-layer 576-wide Llama), random weights, for the vlm tier's transformers runtime."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor,
                              Idefics3Processor, PreTrainedTokenizerFast)

    words = ["<pad>", "<s>", "</s>", "<unk>", "yes", "Yes", "no", "No", "User:", "Assistant:"] + WORDS[4:]
    specials = ["<|im_start|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
    specials += [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    config = Idefics3Config(
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, patch_size=16, image_size=512),
        text_config=dict(model_type="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49280, max_position_embeddings=8192, pad_token_id=0),
        scale_factor=4, image_token_id=fast.convert_tokens_to_ids("<image>"), pad_token_id=0)
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    images = Idefics3ImageProcessor(size={"longest_edge": 2048}, max_image_size={"longest_edge": 512}, do_image_splitting=image_splitting)
    processor = Idefics3Processor(image_processor=images, tokenizer=fast, image_seq_len=64, chat_template=SMOLVLM_CHAT)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_same_architecture(folder: Path, hub_repo: str, seed: int = 0) -> Path:
    """A random-weight stand-in for the checkpoint `hub_repo` names (a key of ARCHITECTURES, or SmolVLM-256M)."""
    if hub_repo == SMOLVLM_256M:
        return build_smolvlm_like(folder, seed)
    if hub_repo not in ARCHITECTURES:
        raise ValueError(f"no random-weight stand-in for {hub_repo}: choose one of {', '.join([*ARCHITECTURES, SMOLVLM_256M])}")
    return build_image_text_model(folder, hub_repo, seed)
