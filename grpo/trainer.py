"""TRL's GRPOTrainer, sampling from the LoRA adapter merged into the base weights.

An unmerged LoRA linear layer runs three matrix products (base, A, B) and PEFT's Python around them, for each of the
~200 adapted layers, at every generated token. GRPO spends most of a CPU step generating, so for the length of
`generate` we add the adapter's delta into the base weights (one product per layer, once per step) and afterwards
copy the saved base weights back, bit for bit: PEFT's own `unmerge_adapter` subtracts the delta again, which in
bf16 leaves rounding residue in the frozen weights that would grow step after step. The sampling policy is the same
(up to rounding); the log-probabilities of the loss and of the KL reference still come from the unmerged model.
Measured with scripts/benchmark.py (README, Performance). TRL's vLLM path merges by itself when it syncs weights.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
import trl
from peft import PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer

log = logging.getLogger(__name__)


class GRPOTrainer(trl.GRPOTrainer):
    """`trl.GRPOTrainer` plus `merge_lora_for_generation` (see the module docstring); everything else is TRL's."""

    def __init__(self, *args, merge_lora_for_generation: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        reason = why_not_merge(self) if merge_lora_for_generation else "model.merge_lora_for_generation=false"
        self.merge_lora_for_generation = reason is None
        if merge_lora_for_generation and reason:
            log.info("sampling from the unmerged LoRA adapter: %s", reason)

    def _generate_single_turn(self, *args, **kwargs):
        if not self.merge_lora_for_generation:
            return super()._generate_single_turn(*args, **kwargs)
        with merged_lora(self.accelerator.unwrap_model(self.model)):
            return super()._generate_single_turn(*args, **kwargs)


def why_not_merge(trainer: trl.GRPOTrainer) -> str | None:
    """Why merging for generation does not apply to this trainer (None: it does)."""
    from accelerate.utils import DistributedType

    model = trainer.accelerator.unwrap_model(trainer.model)
    if not isinstance(model, PeftModel):
        return "no LoRA adapter (full fine-tuning)"
    if not hasattr(trl.GRPOTrainer, "_generate_single_turn"):  # the method we wrap; TRL could rename it
        return f"trl {trl.__version__} has no GRPOTrainer._generate_single_turn"
    if trainer.args.use_vllm or getattr(trainer, "use_transformers_continuous_batching", False):
        return "generation by vLLM or continuous batching, which handle the weights themselves"
    if trainer.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
        return "DeepSpeed/FSDP shard the weights, they are gathered only inside TRL's generation context"
    if not all(weight.is_floating_point() for weight, _ in base_weights(model)):
        return "quantised base weights (merging into them is lossy)"
    return None


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
    model.merge_adapter()
    try:
        yield model
    finally:
        with torch.no_grad():
            for tensor, original in saved:
                tensor.copy_(original)
        for layer in {id(layer): layer for _, layer in base_weights(model)}.values():
            layer.merged_adapters = []
