"""The loss-side speed-ups of `grpo.training.trainer.GRPOTrainer`; each leaves the gradient as TRL computes it.

Scoring completion positions only. TRL's fused LM head computes log-probabilities at the completion positions only
where it runs its Triton kernels (CUDA, XPU); on other devices it computes every position of prompt + completion and
discards the prompt's, so that compilers (Neuron, XLA) see fixed shapes. On CPU nothing is compiled and the prompt
positions are pure waste (here ~2/3 of the rows): we let CPU take TRL's completion-only path too.

Skipping completions without advantage. A group whose completions all earn the same reward has advantage 0 for
every one of them: without a KL term (beta=0) their loss and gradient are exactly zero, yet TRL runs the policy's
forward and backward over them. On the embedded task a third of the groups are like that once the format is learned
(frac_reward_zero_std). We drop those rows before the loss; the DAPO loss divides by the token count of the whole
generation batch (num_items_in_batch, computed before), so the gradient is the same. Per-token metrics (entropy,
clip ratios) then describe the completions that were trained on.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import trl.trainer.utils as trl_utils

# Loss types whose per-token loss is advantage x (a function of the ratio), normalised by num_items_in_batch: a row
# with advantage 0 adds nothing to the loss nor to the normaliser, so dropping it leaves the gradient as it was.
SKIPPABLE_LOSS_TYPES = ("dapo", "cispo")


# The batch keys of a text-only model: one row per completion. Others (images) are not per row: we leave them be.
TEXT_BATCH_KEYS = {
    "prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "tool_mask", "advantages", "num_items_in_batch",
    "old_per_token_logps", "ref_per_token_logps", "sampling_per_token_logps", "importance_sampling_ratio",
}  # fmt: skip


# |advantage| below this counts as 0: a group of equal rewards leaves float residue of ~1e-8 after (r - mean).
ZERO_ADVANTAGE = 1e-6


def is_text_batch(inputs: dict) -> bool:
    """Whether every key of the batch is one row per completion (a text-only model's batch)."""
    return not set(inputs) - TEXT_BATCH_KEYS


def has_advantage(inputs: dict) -> torch.Tensor:
    """Per row: whether the completion's advantage is not 0 (per-token advantages: at any token)."""
    keep = inputs["advantages"].abs() > ZERO_ADVANTAGE
    return keep if keep.dim() == 1 else keep.any(dim=1)


def loss_tokens(inputs: dict, rows: torch.Tensor) -> torch.Tensor:
    """How many completion tokens the loss counts in the given rows (TRL's loss mask: completion and tool masks)."""
    mask = inputs["completion_mask"]
    if inputs.get("tool_mask") is not None:
        mask = mask * inputs["tool_mask"]
    return mask[rows].sum()


def rows_with_advantage(inputs: dict) -> dict:
    """The batch without the completions whose advantage is 0, keeping at least one (backward needs a graph)."""
    advantages = inputs["advantages"]
    if not is_text_batch(inputs):
        return inputs
    keep = has_advantage(inputs)
    if keep.all():
        return inputs
    if not keep.any():
        keep = keep.clone()
        keep[0] = True  # its advantage is 0: a forward and backward of one row, with a zero gradient
    rows = len(advantages)
    return {
        key: value[keep] if isinstance(value, torch.Tensor) and value.dim() > 0 and len(value) == rows else value
        for key, value in inputs.items()
    }


@contextmanager
def completion_positions_on_cpu():
    """Inside: TRL's fused LM head scores completion positions only on CPU too (its choice of kernels is unchanged:
    that reads the kernel module's own `_use_triton`)."""
    original = trl_utils._use_triton
    trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        trl_utils._use_triton = original

