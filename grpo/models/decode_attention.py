"""Attention of one new token as two small float32 products, instead of SDPA's flash kernel, while a CPU decodes.

At each decoded token every layer attends from one query per head to the cached keys. On a CPU, torch's SDPA runs
its flash-attention kernel for that too, whose set-up per call (splitting into blocks, packing the bf16 keys and
values for its matrix kernels) costs several times the few thousand products it computes: measured on SmolLM2-135M,
about a quarter of `generate` (docs/experiments/2026-12-07-packed-weights.md). Inside `decode_attention`, a query of
length 1 is computed as scores = q k^T (float32), a float32 softmax, and probabilities x v, cast back to the model's
dtype: the same function as SDPA's, but not bit for bit (the kernel sums in another order and precision), so under
bf16 a sampled token can differ now and then, as between two kinds of GPU. Every other call (prompts,
training forwards) goes to transformers' SDPA as before.

It works through transformers' attention registry: the model's attention implementation is switched to ours for the
length of the context, with SDPA's masks.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from grpo.models.prompt_cache import VERIFIED_MODEL_TYPES

IMPLEMENTATION = "sdpa_cpu_decode"


def single_query_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' attention interface: one query position (decoding) in float32 products, anything else by SDPA."""
    if query.shape[2] != 1 or dropout or query.device.type != "cpu" or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)  # fmt: skip
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    # Query heads in groups of their shared key/value head (as transformers' repeat_kv pairs them): no copies of k, v.
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim).float()
    scores = torch.matmul(grouped, key.float().transpose(2, 3)) * (dim**-0.5 if scaling is None else scaling)
    if attention_mask is not None:  # (batch, 1, 1, keys): SDPA's boolean mask (True: attend) or an additive one
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, float("-inf"))
        else:
            scores = scores + attention_mask
    output = torch.matmul(scores.softmax(dim=-1), value.float()).to(query.dtype)
    return output.reshape(batch, heads, 1, dim).transpose(1, 2), None  # (batch, 1, heads, dim), as SDPA returns


AttentionInterface.register(IMPLEMENTATION, single_query_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, sdpa_mask)


def why_not_decode_attention(model: torch.nn.Module) -> str | None:
    """Why `decode_attention` does not apply to this (unwrapped) model (None: it does)."""
    config = model.config
    if model.device.type != "cpu":
        return f"the model is on {model.device.type}: SDPA's kernels there are made for decoding"
    if config.model_type not in VERIFIED_MODEL_TYPES:
        return f"model type {config.model_type!r}: verified are {', '.join(VERIFIED_MODEL_TYPES)}"
    if config._attn_implementation != "sdpa":
        return f"attention {config._attn_implementation!r}: it replaces SDPA only"
    return None


@contextmanager
def decode_attention(model: torch.nn.Module):
    """Inside: the model's attention layers decode through `single_query_attention` (call only where
    `why_not_decode_attention(model)` is None). After (even on error): SDPA again."""
    configs = {id(module.config): module.config for module in model.modules() if hasattr(module, "config")}
    switched = [config for config in configs.values() if getattr(config, "_attn_implementation", None) == "sdpa"]
    for config in switched:
        config._attn_implementation = IMPLEMENTATION
    try:
        yield model
    finally:
        for config in switched:
            config._attn_implementation = "sdpa"
