"""Turn the judge's question into the model's own chat format, with its image placeholder."""

from __future__ import annotations

from pathlib import Path

PLACEHOLDER = "{prompt}"


def prompt_from_processor(processor, prompt: str) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def prompt_pattern(processor_dir: str | Path | None, template: str | None = None) -> str:
    """The generation prompt with PLACEHOLDER where the question goes.

    A configured `template` wins; otherwise the chat template of the processor saved in the model
    folder, which knows the model's image placeholder.
    """
    if template:
        if PLACEHOLDER not in template:
            raise ValueError(f"prompt_template must contain {PLACEHOLDER}")
        return template
    if processor_dir is None or not Path(processor_dir).is_dir():
        raise ValueError("a VLM tier needs prompt_template, or a local model folder holding its processor")
    from transformers import AutoProcessor

    return prompt_from_processor(AutoProcessor.from_pretrained(str(processor_dir)), PLACEHOLDER)
