"""Scoring with shared prompts: TRL's per-token log-probs of the completions, each distinct prompt of the batch run
through the model once instead of once per completion.

With the quickstart's ~92-token prompts and ~20-token completions, four fifths of the tokens of TRL's forward over
prompt + completion are repeated prompt tokens. Prefix Grouper (Liu et al., 2025, arXiv:2506.05433) encodes the shared
prefix once per group and shows the outputs and gradients are those of the repeated encoding; in the backward, the
expansion (an index gather on the batch dimension) sums the G completions' gradients into the one encoding, as the G
copies' gradients would have summed into the weights. Here, per chunk of rows (TRL's memory bound):
1. grpo/models/prompt_cache.py encodes every distinct prompt but its last token once, keeping the graph, and expands
   the key/value cache to one row per completion;
2. each row's last prompt token and completion run with that cache through TRL's fused LM head, so TRL's own code
   computes the log-probs (at its temperature) and entropies, the first completion token's from the last prompt
   position as in TRL's forward.
The attention mask is [prompt mask, completion mask], left padding included. TRL passes no position ids, so its forward
numbers positions by column from the first (padded) one; the model continues that count from the cache's length.
"""

from __future__ import annotations

import torch

from grpo.models.prompt_cache import encode_prompts


def checkpoints_layers(model: torch.nn.Module) -> bool:
    """Whether layers recompute their activations in the backward (in training): transformers' checkpointed layers then
    drop the cache when gradients are on (the recomputation would write it a second time)."""
    return model.training and any(getattr(layer, "gradient_checkpointing", False) is True for layer in model.modules())


def score_with_shared_prompts(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    batch_size: int | None = None,
    compute_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What TRL's `_get_per_token_logps_and_entropies` returns for prompt + completion rows: the completion tokens'
    log-probs (and entropies), each distinct prompt encoded once per chunk of `batch_size` rows."""
    batch_size = batch_size or input_ids.size(0)
    chunks = [
        score_chunk(model, input_ids[start : start + batch_size], attention_mask[start : start + batch_size],
                    input_ids.size(1) - logits_to_keep, compute_entropy)
        for start in range(0, input_ids.size(0), batch_size)
    ]  # fmt: skip
    logps = torch.cat([logps for logps, _ in chunks])
    return logps, torch.cat([entropy for _, entropy in chunks]) if compute_entropy else None


def score_chunk(model, input_ids, attention_mask, prompt_length, compute_entropy):
    cache = encode_prompts(model, input_ids[:, :prompt_length], attention_mask[:, :prompt_length])
    tail_ids = input_ids[:, prompt_length - 1 :]  # the last prompt token, then the completion
    labels = tail_ids.masked_fill(attention_mask[:, prompt_length - 1 :] == 0, -100)
    labels[:, 0] = -100  # as TRL's labels: only completion tokens are scored
    outputs = model(input_ids=tail_ids, attention_mask=attention_mask, cache=cache, labels=labels, fused_lm_head=True)
    return outputs.log_probs, outputs.entropy if compute_entropy else None
