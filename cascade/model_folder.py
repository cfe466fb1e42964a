"""Model folders in the Hugging Face layout that operators fetch once onto their own machine.

Presets that need downloaded weights name where they come from (a tier's `hub_repo`). Nothing in
the miner downloads at run time: `natix-miner fetch-model REPO --out FOLDER` does it once, and the
folder is checked when the config loads, so a missing or half-copied folder stops the start with
the command that fixes it, not with a stack trace from deep inside transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

from .extras import require_extra

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# What fetch-model takes from a repository: configs, tokenizers and safetensors weights; not the
# duplicate .bin / .h5 / .msgpack / ONNX copies many repositories also hold. PyTorch .bin weights
# only when a repository has no safetensors.
FETCH_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]
FALLBACK_WEIGHT_PATTERNS = ["pytorch_model*.bin"]


class ModelFolderError(FileNotFoundError):
    pass


def fetch_command(repo: str, folder: Path | str) -> str:
    return f"natix-miner fetch-model {repo} --out {folder}"


def missing_parts(folder: Path) -> list[str]:
    """What a loadable folder lacks, in words; empty when it is complete."""
    if not folder.is_dir():
        return ["the folder itself"]
    problems = []
    if not (folder / CONFIG_FILE).is_file():
        problems.append(CONFIG_FILE)
    weights = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not weights:
        problems.append(f"weights ({' or '.join(WEIGHT_FILES[::2])})")
    for index in (w for w in weights if w.endswith(".index.json")):
        shards = set(json.loads((folder / index).read_text()).get("weight_map", {}).values())
        problems += [f"weight shard {shard}" for shard in sorted(shards) if not (folder / shard).is_file()]
    if not any((folder / name).is_file() for name in PROCESSOR_FILES):
        problems.append(f"image processor ({' or '.join(PROCESSOR_FILES)})")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        problems.append(f"tokenizer ({' or '.join(TOKENIZER_FILES)})")
    return problems


def check_model_folder(folder: Path, hub_repo: str | None = None) -> None:
    """Raise ModelFolderError, in one line that names the fix, unless `folder` holds a whole model."""
    problems = missing_parts(folder)
    if not problems:
        return
    fix = f"fetch it with `{fetch_command(hub_repo, folder)}`" if hub_repo else "copy the whole model folder there"
    what = "does not exist" if problems == ["the folder itself"] else f"lacks {', '.join(problems)}"
    raise ModelFolderError(f"model folder {folder} {what}: {fix}")


def fetch_model(repo: str, out: Path | str, revision: str | None = None) -> Path:
    """Download `repo` from the Hugging Face hub into `out` (run by the operator, never at serve time)."""
    out = Path(out).expanduser().resolve()
    with require_extra("fetching a model from the hub", "vlm"):
        from huggingface_hub import snapshot_download
    try:
        snapshot_download(repo_id=repo, revision=revision, local_dir=str(out), allow_patterns=FETCH_PATTERNS)
        if not any((out / name).is_file() for name in WEIGHT_FILES):
            snapshot_download(repo_id=repo, revision=revision, local_dir=str(out), allow_patterns=FALLBACK_WEIGHT_PATTERNS)
    except Exception as exc:  # offline, unknown or gated repository, refused token: all end the same way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFolderError(
            f"could not download {repo} from the Hugging Face hub ({type(exc).__name__}: {reason}); this needs "
            f"internet access to huggingface.co (and `hf auth login` for gated models), or copy {out.name}/ "
            "from a machine that has it"
        ) from None
    check_model_folder(out, repo)
    return out
