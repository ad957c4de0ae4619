"""A key/value cache of each distinct prompt of a batch, expanded to the rows that share it (Prefix Grouper, Liu et
al., 2025, arXiv:2506.05433): GRPO's batches hold G completions of each prompt, and encoding a prompt once instead of
G times gives the same keys and values: in a causal model they do not depend on what follows the prompt.

Used by the loss (grpo/training/shared_prefix.py: the policy's, reference's and old policy's forwards) and by
generation (`shared_prefill` below: one prefill per distinct prompt). The cache holds every prompt token but the last:
each row then runs its last prompt token itself, so the next token's distribution comes from the row's own forward.
Rows may come in any order and groups of any size: the distinct prompts are found, not assumed.

Only decoder-only architectures checked to give the same outputs with a full-attention cache are allowed.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from peft import PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers import DynamicCache

# Checked against the forward over every row (tests/test_shared_prefix.py): plain decoders with RoPE and a
# full-attention cache in every layer.
VERIFIED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
VERIFIED_ATTENTION = ("sdpa", "eager")


def why_not_model(model: torch.nn.Module) -> str | None:
    """Why this (unwrapped) model cannot share its prompts' cache (None: it can)."""
    config = model.config
    if config.model_type not in VERIFIED_MODEL_TYPES:
        return f"model type {config.model_type!r}: verified are {', '.join(VERIFIED_MODEL_TYPES)}"
    if config._attn_implementation not in VERIFIED_ATTENTION:
        return f"attention {config._attn_implementation!r}: verified are {', '.join(VERIFIED_ATTENTION)}"
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    if layer_types != {"full_attention"} or getattr(config, "sliding_window", None) is not None:
        return f"layers other than full attention ({sorted(layer_types)}, sliding window): their cache drops old keys"
    if isinstance(model, PeftModel):
        return why_not_adapter(model)
    return None


def why_not_adapter(model: PeftModel) -> str | None:
    peft_config = model.active_peft_config
    if peft_config.peft_type != "LORA":
        return f"a {peft_config.peft_type} adapter (verified with LoRA only)"
    if getattr(peft_config, "alora_invocation_tokens", None):
        return "an activated-LoRA adapter: it finds its invocation tokens in the input, which the split would hide"
    return None


def draws_dropout(model: torch.nn.Module) -> bool:
    """Whether a forward of the model now draws dropout masks: one per row when every row runs its prompt, one per
    prompt when the prompt is shared (the same expected gradient and samples, but noise correlated within a group).
    The dropout of an adapter that is disabled (TRL's reference forward) or merged (sampling) draws none."""
    if not model.training:
        return False
    silent = {id(module) for layer in model.modules() if isinstance(layer, BaseTunerLayer)
              and (layer.disable_adapters or layer.merged) for module in layer.modules()}  # fmt: skip
    dropouts = [module for module in model.modules() if isinstance(module, torch.nn.Dropout) and module.p > 0]
    return (getattr(model.config, "attention_dropout", 0.0) or 0.0) > 0 or any(id(m) not in silent for m in dropouts)


def shares_prompts(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> bool:
    """Whether some prompt of the batch repeats (something to share), left-padded (its last column a real token, which
    the split relies on) and at least two tokens wide."""
    if prompt_ids.size(1) < 2 or not bool(prompt_mask[:, -1].all()):
        return False
    return len(group_prompts(prompt_ids, prompt_mask)[0]) < len(prompt_ids)


def group_prompts(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The distinct prompts (ids, mask) and, per row, the index of its prompt among them."""
    rows = torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], dim=1)
    distinct, row_prompt = torch.unique(rows, dim=0, return_inverse=True)
    length = prompt_ids.size(1)
    return distinct[:, :length], distinct[:, length:].to(prompt_mask.dtype), row_prompt


def encode_prompts(
    model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, count_real_tokens: bool = False
) -> DynamicCache:
    """The cache of every distinct prompt but its last token, expanded to one row per prompt row (a differentiable
    gather: with gradients on, each row's gradient flows back into its prompt's one encoding).

    Positions are numbered by column, as a forward given no position ids does (TRL's loss forward), or with
    `count_real_tokens` from each prompt's first real token, as `generate` numbers left-padded prompts."""
    distinct_ids, distinct_mask, row_prompt = group_prompts(prompt_ids, prompt_mask)
    prefix_mask = distinct_mask[:, :-1]
    positions = {"position_ids": real_token_positions(prefix_mask)} if count_real_tokens else {}
    cache = DynamicCache()
    # logits_to_keep=1: the LM head's work here is one position per prompt; the rows' own forwards give the logits.
    model(input_ids=distinct_ids[:, :-1], attention_mask=prefix_mask, cache=cache, use_cache=True, logits_to_keep=1,
          **positions)  # fmt: skip
    cache.batch_select_indices(row_prompt)
    return cache


def real_token_positions(mask: torch.Tensor) -> torch.Tensor:
    # As transformers' generate: padding at position 0, real tokens counted from 0.
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)


@contextmanager
def shared_prefill(model: torch.nn.Module):
    """Inside: `model.generate` prefills each distinct prompt once and expands its cache to the rows that repeat it,
    then generates as before from that cache (each row's last prompt token, then decoding). Calls it cannot share
    (no repeated prompt, images, a cache of their own, beams, dropout) are left to `generate` as they are."""
    own = vars(model).get("generate")  # an instance's own generate, if it has one; else the class's method
    generate = model.generate
    model.generate = lambda *args, **kwargs: generate_from_shared_prompts(model, generate, *args, **kwargs)
    try:
        yield model
    finally:
        if own is None:
            del model.generate
        else:
            model.generate = own


# `generate` arguments under which a prefilled cache would not be what generate expects: a cache or embeddings of
# the caller's, several sequences per row (beams, return sequences), another cache type, a draft model.
UNSHAREABLE_KWARGS = {"cache", "past_key_values", "inputs_embeds", "num_beams", "num_return_sequences",
                      "cache_implementation", "use_cache", "assistant_model"}  # fmt: skip


def generate_from_shared_prompts(model, generate, input_ids=None, attention_mask=None, **kwargs):
    if can_prefill_once(model, input_ids, attention_mask, kwargs):
        kwargs["cache"] = encode_prompts(model, input_ids, attention_mask, count_real_tokens=True)
    return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


def can_prefill_once(model, input_ids, attention_mask, kwargs: dict) -> bool:
    config = kwargs.get("generation_config") or model.generation_config
    if input_ids is None or attention_mask is None or UNSHAREABLE_KWARGS & set(kwargs):
        return False
    if any(isinstance(value, torch.Tensor) for value in kwargs.values()):  # images and other per-row inputs
        return False
    if config.cache_implementation is not None or (config.num_beams or 1) > 1 or (config.num_return_sequences or 1) > 1:
        return False
    if config.use_cache is False or draws_dropout(model):  # TRL samples in training mode, unmerged adapters draw masks
        return False
    return shares_prompts(input_ids, attention_mask)
