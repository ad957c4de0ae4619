"""TRL's GRPOTrainer with eight speed-ups that leave the training unchanged (the `speedups` config section; a ninth,
keeping freed memory, acts on the whole process: grpo/training/memory.py).

Five act on generation (grpo/models/generation.py: sampling from the merged adapter, a contiguous input for the
output layer; grpo/models/packed_weights.py: weights packed once per call for oneDNN; grpo/models/sampling.py: the
same tokens drawn from variates computed at once; grpo/models/prompt_cache.py: one prefill per distinct prompt), three
on the loss
(grpo/training/speedups.py: scoring completion positions only, skipping completions without advantage;
grpo/training/shared_prefix.py: encoding each distinct prompt once, not once per completion); each module says why it
is exact. Each switches itself off, with the reason logged once, where it does not apply. scripts/benchmark.py measures
them (`--without NAME` for one alone; scripts/benchmark_generation.py for the merged adapter), scripts/profile_step.py
splits a step by pass; skipping completions without advantage saves time only in steps with such groups
(docs/performance.md).

One option does change the training, on purpose (`filter_groups`, off by default): DAPO's dynamic-sampling filter
(Yu et al., 2025). Groups whose completions all earn the same reward are left out of the loss, KL term included, and
the DAPO loss is normalised by the tokens of the completions that remain, so a step with one mixed group among four
trains on it at full weight instead of a quarter. DAPO also samples more prompts until the batch is full; here the
batch is what was sampled (ask for more prompts per step to have more mixed groups).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

import torch
import trl
import trl.trainer.utils as trl_utils
from trl.extras.profiling import profiling_context

from grpo.models.generation import contiguous_head_input, merged_lora, why_not_contiguous_head, why_not_merge_model
from grpo.models.packed_weights import packed_linear_weights, why_not_pack
from grpo.models.prompt_cache import draws_dropout, shared_prefill, shares_prompts, why_not_model
from grpo.models.sampling import vectorised_sampling, why_not_vectorise
from grpo.training.held_out import GreedyHeldOut
from grpo.training.shared_prefix import checkpoints_layers, score_with_shared_prompts
from grpo.training.speedups import (
    SKIPPABLE_LOSS_TYPES,
    completion_positions_on_cpu,
    has_advantage,
    is_text_batch,
    loss_tokens,
    rows_with_advantage,
)

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
        pack_weights_for_generation: bool = True,
        vectorised_sampling: bool = True,
        shared_prefix: bool = True,
        shared_prefill: bool = True,
        filter_groups: bool = False,
        held_out: GreedyHeldOut | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.filter_groups = filter_groups
        self.held_out = held_out
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
        self.pack_weights_for_generation = pack_weights_for_generation and applies(
            "pack_weights_for_generation", why_not_pack_for_generation(self)
        )
        self.vectorised_sampling = vectorised_sampling and applies(
            "vectorised_sampling", why_not_vectorised_sampling(self)
        )
        self.shared_prefix = shared_prefix and applies("shared_prefix", why_not_shared_prefix(self))
        self.shared_prefix_declined: set[str] = set()  # per-batch reasons, logged once
        self.shared_prefill = shared_prefill and applies("shared_prefill", why_not_shared_prefill(self))

    def evaluate(self, *args, **kwargs) -> dict[str, float]:
        """TRL's evaluation (one sampled completion per held-out prompt), then held-out greedy accuracy, logged too."""
        metrics = super().evaluate(*args, **kwargs)
        if self.held_out is None:
            return metrics
        model = self.accelerator.unwrap_model(self.model)
        greedy = self.held_out(model, self.processing_class)
        self.log(greedy)
        warning = self.held_out.record(
            self.state.global_step, greedy.get("eval_greedy/accuracy"), self.state.log_history
        )
        if warning:
            log.warning("%s", warning)
        return {**metrics, **greedy}

    def _generate_single_turn(self, *args, **kwargs):
        model = self.accelerator.unwrap_model(self.model)
        with ExitStack() as speedups:
            if self.merge_lora_for_generation:
                speedups.enter_context(merged_lora(model))
            if self.contiguous_head_input:
                speedups.enter_context(contiguous_head_input(model))
            if self.pack_weights_for_generation:  # after merging: it packs the weights as they are
                speedups.enter_context(packed_linear_weights(model))
            if self.vectorised_sampling:
                speedups.enter_context(vectorised_sampling())
            if self.shared_prefill:
                speedups.enter_context(shared_prefill(model))
            return super()._generate_single_turn(*args, **kwargs)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **multimodal):  # fmt: skip
        with ExitStack() as speedups:
            if self.score_completions_only:
                speedups.enter_context(completion_positions_on_cpu())
            if self.shares_prefix(model, input_ids, attention_mask, logits_to_keep, compute_aux_loss, multimodal):
                # TRL's own timer, so its profiling metric still counts this forward.
                with profiling_context(self, "_get_per_token_logps_and_entropies"), self.accelerator.autocast():
                    logps, entropies = score_with_shared_prompts(
                        model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy
                    )
                return logps, entropies, None
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **multimodal,
            )  # fmt: skip

    def shares_prefix(self, model, input_ids, attention_mask, logits_to_keep, compute_aux_loss, multimodal) -> bool:
        """Whether this forward can encode each distinct prompt once: a text batch in which some prompt repeats."""
        if not self.shared_prefix:
            return False
        model = self.accelerator.unwrap_model(model)
        if torch.is_grad_enabled() and checkpoints_layers(model):  # they drop the cache when gradients are on
            return self.decline("gradient checkpointing: the policy's loss forward takes TRL's (the others share)")
        if draws_dropout(model):  # the same expected gradient, but not TRL's noise
            return self.decline("dropout (model.lora.lora_dropout, trainer.disable_dropout): TRL draws a mask per "
                                "completion; forwards that draw masks take TRL's (the reference's shares)")  # fmt: skip
        if compute_aux_loss or any(value is not None for value in multimodal.values()):
            return self.decline("images or a MoE router loss in the forward: TRL's forward computes them")
        prompt_length = input_ids.size(1) - logits_to_keep
        if not shares_prompts(input_ids[:, :prompt_length], attention_mask[:, :prompt_length]):
            return self.decline("a batch in which no prompt repeats (nothing to share) takes TRL's forward")
        return True

    def decline(self, reason: str) -> bool:
        """False, after logging the reason the first time it comes up."""
        if reason not in self.shared_prefix_declined:
            self.shared_prefix_declined.add(reason)
            applies("shared_prefix", reason)
        return False

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


def why_not_score_completions_only() -> str | None:
    """Why completion-only scoring does not apply with the installed TRL (None: it does)."""
    if not hasattr(trl.GRPOTrainer, "_get_per_token_logps_and_entropies"):  # the method we wrap
        return f"trl {trl.__version__} has no GRPOTrainer._get_per_token_logps_and_entropies"
    # TRL's fused LM head asks trl.trainer.utils._use_triton(device) per call; without it, that code has changed.
    if not callable(getattr(trl_utils, "_use_triton", None)):
        return f"trl {trl.__version__} has no trl.trainer.utils._use_triton"
    return None


def why_not_pack_for_generation(trainer: trl.GRPOTrainer) -> str | None:
    """Why packing the weights for generation does not apply to this trainer (None: it does)."""
    from accelerate.utils import DistributedType

    if not hasattr(trl.GRPOTrainer, "_generate_single_turn"):  # the method we wrap
        return f"trl {trl.__version__} has no GRPOTrainer._generate_single_turn"
    if trainer.args.use_vllm or getattr(trainer, "use_transformers_continuous_batching", False):
        return "generation by vLLM or continuous batching"
    if trainer.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
        return "DeepSpeed/FSDP shard the weights, they are gathered only inside TRL's generation context"
    return why_not_pack(trainer.accelerator.unwrap_model(trainer.model))


def why_not_vectorised_sampling(trainer: trl.GRPOTrainer) -> str | None:
    """Why sampling with vectorised variates does not apply to this trainer (None: it does)."""
    if not hasattr(trl.GRPOTrainer, "_generate_single_turn"):  # the method we wrap
        return f"trl {trl.__version__} has no GRPOTrainer._generate_single_turn"
    if trainer.args.use_vllm or getattr(trainer, "use_transformers_continuous_batching", False):
        return "generation by vLLM or continuous batching, which sample by themselves"
    if trainer.accelerator.device.type != "cpu":
        return f"generation on {trainer.accelerator.device.type}, where torch draws the variates in parallel already"
    return why_not_vectorise()


def why_not_shared_prefix(trainer: trl.GRPOTrainer) -> str | None:
    """Why encoding each prompt once per group does not apply to this trainer (None: it does)."""
    from accelerate.utils import DistributedType

    if not hasattr(trl.GRPOTrainer, "_get_per_token_logps_and_entropies"):  # the method we wrap
        return f"trl {trl.__version__} has no GRPOTrainer._get_per_token_logps_and_entropies"
    if not callable(getattr(trl_utils, "add_fused_lm_head", None)):  # whose forward scores the completions
        return f"trl {trl.__version__} has no trl.trainer.utils.add_fused_lm_head"
    if trainer.num_generations < 2:
        return f"trainer.num_generations={trainer.num_generations}: no prompt repeats"
    if trainer.args.use_vllm:  # its generation caches shared prompts by itself; its training setups were not tested
        return "trainer.use_vllm: not tested with vLLM"
    if trainer.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
        return "DeepSpeed/FSDP: not tested with a key/value cache that carries gradients"
    return why_not_model(trainer.accelerator.unwrap_model(trainer.model))


def why_not_shared_prefill(trainer: trl.GRPOTrainer) -> str | None:
    """Why prefilling each distinct prompt once does not apply to this trainer's generation (None: it does)."""
    from accelerate.utils import DistributedType

    if not hasattr(trl.GRPOTrainer, "_generate_single_turn"):  # the method we wrap
        return f"trl {trl.__version__} has no GRPOTrainer._generate_single_turn"
    if trainer.num_generations < 2:
        return f"trainer.num_generations={trainer.num_generations}: no prompt repeats"
    if trainer.args.use_vllm or getattr(trainer, "use_transformers_continuous_batching", False):
        return "generation by vLLM or continuous batching, which cache shared prompts by themselves"
    if trainer.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
        return "DeepSpeed/FSDP: not tested (they gather the weights for generation)"
    if trainer.args.cache_implementation is not None:
        return f"trainer.cache_implementation={trainer.args.cache_implementation}: generate builds that cache itself"
    return why_not_model(trainer.accelerator.unwrap_model(trainer.model))


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


