"""TRL's GRPOTrainer with four speed-ups that leave the training unchanged (the `speedups` config section).

Sampling from the merged adapter. An unmerged LoRA linear layer runs three matrix products (base, A, B) and PEFT's
Python around them, for each of the ~200 adapted layers, at every generated token. For the length of `generate` we
add the adapter's delta into the base weights (one product per layer, once per step), and afterwards copy the saved
base weights back, bit for bit: PEFT's own `unmerge_adapter` subtracts the delta again, which in bf16 leaves rounding
residue in the frozen weights that would grow step after step. The sampling policy is the same (up to rounding); the
log-probabilities of the loss and of the KL reference still come from the unmerged model. TRL's vLLM path merges by
itself when it syncs weights.

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

A contiguous input for the output layer. At the first step of `generate`, transformers hands the LM head the
prompt's last position only: a strided view of the hidden states. torch's matmul folds a (batch, 1, hidden) input into
one matrix product only when that view is contiguous or the weight requires a gradient; a frozen head (LoRA, or
evaluation) gets neither, and matmul instead copies the whole (vocabulary x hidden) weight once per sequence for a
batched product: 57 MB per completion for SmolLM2-135M, at every `generate` call. Copying the input (batch x hidden
numbers) avoids it; the logits are the same.

The first two and the fourth are measured with scripts/benchmark.py (the fourth also with
scripts/benchmark_generation.py); the third saves time only in steps with such groups (README, Performance).

One option does change the training, on purpose (`filter_groups`, off by default): DAPO's dynamic-sampling filter
(Yu et al., 2025). Groups whose completions all earn the same reward are left out of the loss, KL term included, and
the DAPO loss is normalised by the tokens of the completions that remain, so a step with one mixed group among four
trains on it at full weight instead of a quarter. DAPO also samples more prompts until the batch is full; here the
batch is what was sampled (ask for more prompts per step to have more mixed groups).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager

import torch
import trl
import trl.trainer.utils as trl_utils
from peft import PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer

log = logging.getLogger(__name__)


class GRPOTrainer(trl.GRPOTrainer):
    """`trl.GRPOTrainer` plus the speed-ups above, each on unless switched off or not applicable, and DAPO's group
    filter when asked for."""

    def __init__(
        self,
        *args,
        merge_lora_for_generation: bool = True,
        score_completions_only: bool = True,
        skip_zero_advantage: bool = True,
        contiguous_head_input: bool = True,
        filter_groups: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.filter_groups = filter_groups
        self.merge_lora_for_generation = merge_lora_for_generation and applies(
            "merge_lora_for_generation", why_not_merge(self)
        )
        self.score_completions_only = score_completions_only and applies(
            "score_completions_only", why_not_score_completions_only()
        )
        self.skip_zero_advantage = skip_zero_advantage and applies("skip_zero_advantage", why_not_skip(self))
        self.contiguous_head_input = contiguous_head_input and applies(
            "contiguous_head_input", why_not_contiguous_head(self.accelerator.unwrap_model(self.model))
        )

    def _generate_single_turn(self, *args, **kwargs):
        model = self.accelerator.unwrap_model(self.model)
        with ExitStack() as speedups:
            if self.merge_lora_for_generation:
                speedups.enter_context(merged_lora(model))
            if self.contiguous_head_input:
                speedups.enter_context(contiguous_head_input(model))
            return super()._generate_single_turn(*args, **kwargs)

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        if not self.score_completions_only:
            return super()._get_per_token_logps_and_entropies(*args, **kwargs)
        with completion_positions_on_cpu():
            return super()._get_per_token_logps_and_entropies(*args, **kwargs)

    def _generate_and_score_completions(self, inputs):
        batch = super()._generate_and_score_completions(inputs)
        # Text batches only: rows_with_advantage leaves others (images) whole, so their normaliser must stay TRL's.
        if self.filter_groups and self.model.training and is_text_batch(batch):
            # The loss is normalised by the tokens of the completions it trains on, not diluted by the others.
            batch["num_items_in_batch"] = self.accelerator.gather(loss_tokens(batch, has_advantage(batch))).sum()
        return batch

    def _compute_loss(self, model, inputs):
        if self.filter_groups and self.model.training:
            kept = rows_with_advantage(inputs)
            loss = super()._compute_loss(model, kept)
            # No completion with an advantage: nothing to learn from this batch, not even its KL term.
            return loss if has_advantage(inputs).any() else loss * 0.0
        if self.skip_zero_advantage:
            inputs = rows_with_advantage(inputs)
        return super()._compute_loss(model, inputs)


def applies(speedup: str, reason: str | None) -> bool:
    """True when there is no reason against the speed-up; the reason is logged otherwise."""
    if reason:
        log.info("speedups.%s does not apply: %s", speedup, reason)
    return reason is None


def why_not_merge(trainer: trl.GRPOTrainer) -> str | None:
    """Why merging for generation does not apply to this trainer (None: it does)."""
    from accelerate.utils import DistributedType

    if not hasattr(trl.GRPOTrainer, "_generate_single_turn"):  # the method we wrap; TRL could rename it
        return f"trl {trl.__version__} has no GRPOTrainer._generate_single_turn"
    if trainer.args.use_vllm or getattr(trainer, "use_transformers_continuous_batching", False):
        return "generation by vLLM or continuous batching, which handle the weights themselves"
    if trainer.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
        return "DeepSpeed/FSDP shard the weights, they are gathered only inside TRL's generation context"
    return why_not_merge_model(trainer.accelerator.unwrap_model(trainer.model))


def why_not_merge_model(model: torch.nn.Module) -> str | None:
    """Why `merged_lora` does not apply to this model (None: it does); also used by the evaluation."""
    if not isinstance(model, PeftModel):
        return "no LoRA adapter (full fine-tuning)"
    if not all(weight.is_floating_point() for weight, _ in base_weights(model)):
        return "quantised base weights (merging into them is lossy)"
    return None


def why_not_score_completions_only() -> str | None:
    """Why completion-only scoring does not apply with the installed TRL (None: it does)."""
    if not hasattr(trl.GRPOTrainer, "_get_per_token_logps_and_entropies"):  # the method we wrap
        return f"trl {trl.__version__} has no GRPOTrainer._get_per_token_logps_and_entropies"
    # TRL's fused LM head asks trl.trainer.utils._use_triton(device) per call; without it, that code has changed.
    if not callable(getattr(trl_utils, "_use_triton", None)):
        return f"trl {trl.__version__} has no trl.trainer.utils._use_triton"
    return None


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


def why_not_skip(trainer: trl.GRPOTrainer) -> str | None:
    """Why skipping zero-advantage completions would change this trainer's gradient (None: it would not)."""
    if not hasattr(trl.GRPOTrainer, "_compute_loss"):  # the method we wrap
        return f"trl {trl.__version__} has no GRPOTrainer._compute_loss"
    if trainer.loss_type not in SKIPPABLE_LOSS_TYPES:
        return f"trainer.loss_type={trainer.loss_type} averages over its rows (skippable: {SKIPPABLE_LOSS_TYPES})"
    if trainer.beta != 0.0:
        return f"trainer.beta={trainer.beta}: the KL term has a gradient whatever the advantage"
    if getattr(trainer, "_entropy_bonus_enabled", False) or getattr(trainer, "aux_loss_enabled", False):
        return "an entropy bonus or router auxiliary loss acts on every row"
    if getattr(trainer, "top_entropy_quantile", 1.0) < 1.0:
        return f"trainer.top_entropy_quantile={trainer.top_entropy_quantile}: its threshold is taken over every row"
    return None


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


def base_weights(model: torch.nn.Module) -> list[tuple[torch.Tensor, BaseTunerLayer]]:
    """The weight and bias tensors of every layer that carries an adapter, with their layer."""
    return [
        (tensor, layer)
        for layer in model.modules()
        if isinstance(layer, BaseTunerLayer)
        for tensor in (getattr(layer.get_base_layer(), "weight", None), getattr(layer.get_base_layer(), "bias", None))
        if tensor is not None
    ]


@contextmanager
def merged_lora(model: PeftModel):
    """Inside: the active adapters are merged into the base weights. After (even on error): the exact base weights."""
    saved = [(tensor, tensor.detach().clone()) for tensor, _ in base_weights(model)]
    try:
        model.merge_adapter()
        yield model
    finally:
        with torch.no_grad():
            for tensor, original in saved:
                tensor.copy_(original)
        for layer in {id(layer): layer for _, layer in base_weights(model)}.values():
            layer.merged_adapters = []


def why_not_contiguous_head(model: torch.nn.Module) -> str | None:
    """Why `contiguous_head_input` does not apply to this model (None: it does)."""
    if not isinstance(model.get_output_embeddings(), torch.nn.Module):
        return f"{type(model).__name__} has no output embeddings module"
    return None


@contextmanager
def contiguous_head_input(model: torch.nn.Module):
    """Inside: the model's LM head gets its input contiguous (see the module's docstring for why)."""
    head = model.get_output_embeddings()
    handle = head.register_forward_pre_hook(_make_contiguous) if head is not None else None
    try:
        yield model
    finally:
        if handle is not None:
            handle.remove()


def _make_contiguous(module: torch.nn.Module, args: tuple) -> tuple | None:
    if args and isinstance(args[0], torch.Tensor) and not args[0].is_contiguous():
        return (args[0].contiguous(), *args[1:])
    return None


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
