"""Visual-token pruning for ViT tiers, applied at load time, no retraining (EViT-style).

After block `after_layer`, each image keeps the patch tokens its class token attends to most
(attention of the next block, averaged over heads) and fuses the rest into one token weighted by
that attention; the remaining blocks run on `keep_ratio` of the tokens. Attention and MLP cost
fall with the token count, so the speed-up is set by how early and how hard one prunes; what it
costs in accuracy is measured by benchmarks/token_pruning.py, never assumed. A tier asks for it with
`token_pruning: {keep_ratio: 0.5, after_layer: 3}` in its cascade config.

Works on timm VisionTransformer backbones (the `classifier` tier) and on Hugging Face ViT
image classifiers (the `hf_classifier` tier, the reference miner's format).
"""

from __future__ import annotations

import math

import torch


def _keep_and_fuse(tokens: torch.Tensor, importance: torch.Tensor, keep_ratio: float, prefix: int) -> torch.Tensor:
    """tokens (B, N, C); importance (B, N - prefix) over the patch tokens. Prefix tokens always stay."""
    patches = tokens[:, prefix:]
    keep = max(1, math.ceil(keep_ratio * patches.shape[1]))
    if keep >= patches.shape[1]:
        return tokens
    order = importance.argsort(dim=1, descending=True)
    kept_index, dropped_index = order[:, :keep], order[:, keep:]
    channels = patches.shape[-1]
    kept = patches.gather(1, kept_index.unsqueeze(-1).expand(-1, -1, channels))
    dropped = patches.gather(1, dropped_index.unsqueeze(-1).expand(-1, -1, channels))
    weights = importance.gather(1, dropped_index).unsqueeze(-1)
    fused = (dropped * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1e-12)
    return torch.cat([tokens[:, :prefix], kept, fused], dim=1)


def _class_attention(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """query, key (B, heads, N, d) -> (B, N): the class token's attention, averaged over heads."""
    scores = (query[:, :, :1] @ key.transpose(-2, -1)) / math.sqrt(query.shape[-1])
    return scores.softmax(dim=-1).mean(dim=1)[:, 0]


def _check(keep_ratio: float, after_layer: int, depth: int) -> None:
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"token keep ratio must be in (0, 1], got {keep_ratio}")
    if not 0 <= after_layer < depth - 1:
        raise ValueError(f"prune_after_layer must be in [0, {depth - 2}] for this {depth}-block ViT, got {after_layer}")


class PruneAfter(torch.nn.Module):
    """Runs one transformer block, then keeps the tokens the next block's class token attends to most."""

    def __init__(self, block: torch.nn.Module, importance, keep_ratio: float, prefix: int):
        super().__init__()
        self.block, self.importance, self.keep_ratio, self.prefix = block, importance, keep_ratio, prefix

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        output = self.block(hidden_states, *args, **kwargs)
        tokens = output[0] if isinstance(output, tuple) else output
        pruned = _keep_and_fuse(tokens, self.importance(tokens)[:, self.prefix :], self.keep_ratio, self.prefix)
        return (pruned, *output[1:]) if isinstance(output, tuple) else pruned


def _timm_importance(block):
    attn = block.attn

    def importance(tokens: torch.Tensor) -> torch.Tensor:
        batch, count, _ = tokens.shape
        qkv = attn.qkv(block.norm1(tokens)).reshape(batch, count, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        return _class_attention(attn.q_norm(qkv[0]), attn.k_norm(qkv[1]))

    return importance


def _hf_importance(layer):
    attention = layer.attention
    if hasattr(attention, "q_proj"):  # transformers >= 5.19 layout
        query, key, heads = attention.q_proj, attention.k_proj, None
    else:  # ViTAttention -> ViTSelfAttention (query, key, value)
        inner = attention.attention
        query, key, heads = inner.query, inner.key, inner.num_attention_heads

    def importance(tokens: torch.Tensor) -> torch.Tensor:
        hidden = layer.layernorm_before(tokens)
        batch, count, channels = hidden.shape
        n_heads = heads or channels // attention.head_dim

        def split(projection):
            return projection(hidden).view(batch, count, n_heads, -1).transpose(1, 2)

        return _class_attention(split(query), split(key))

    return importance


def transformer_blocks(model: torch.nn.Module) -> tuple[torch.nn.ModuleList, int, str]:
    """The blocks of a timm VisionTransformer or a Hugging Face ViT, its prefix-token count, and which kind."""
    if hasattr(model, "blocks") and hasattr(model, "num_prefix_tokens") and hasattr(model.blocks[0], "attn"):
        return model.blocks, model.num_prefix_tokens, "timm"
    vit = getattr(model, "vit", None)
    if hasattr(vit, "embeddings"):
        return (vit.layers if hasattr(vit, "layers") else vit.encoder.layer), 1, "hf"
    raise ValueError(f"token pruning needs a ViT; {type(model).__name__} is not one")


def prune_vit_tokens(model: torch.nn.Module, keep_ratio: float, after_layer: int) -> torch.nn.Module:
    """Prune tokens after block `after_layer` (0-based) of a timm VisionTransformer or a Hugging Face
    ViT image classifier, in place. keep_ratio 1.0 leaves the model's outputs unchanged."""
    blocks, prefix, kind = transformer_blocks(model)
    if any(isinstance(block, PruneAfter) for block in blocks):
        raise ValueError("this model already prunes tokens")
    _check(keep_ratio, after_layer, len(blocks))
    if keep_ratio == 1.0:  # nothing to drop: do not pay for ranking the tokens
        return model
    importance = (_timm_importance if kind == "timm" else _hf_importance)(blocks[after_layer + 1])
    blocks[after_layer] = PruneAfter(blocks[after_layer], importance, keep_ratio, prefix)
    return model
