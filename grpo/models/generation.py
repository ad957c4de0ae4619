"""Speed-ups of `model.generate` that leave its output unchanged, used by training, evaluation and the verifier's
sampling alike.

Sampling from the merged adapter. An unmerged LoRA linear layer runs three matrix products (base, A, B) and PEFT's
Python around them, for each of the ~200 adapted layers, at every generated token. For the length of `generate` we
add the adapter's delta into the base weights (one product per layer, once per step), and afterwards copy the saved
base weights back, bit for bit: PEFT's own `unmerge_adapter` subtracts the delta again, which in bf16 leaves rounding
residue in the frozen weights that would grow step after step. The sampling policy is the same (up to rounding); the
log-probabilities of the loss and of the KL reference still come from the unmerged model. TRL's vLLM path merges by
itself when it syncs weights.

A contiguous input for the output layer. At the first step of `generate`, transformers hands the LM head the
prompt's last position only: a strided view of the hidden states. torch's matmul folds a (batch, 1, hidden) input into
one matrix product only when that view is contiguous or the weight requires a gradient; a frozen head (LoRA, or
evaluation) gets neither, and matmul instead copies the whole (vocabulary x hidden) weight once per sequence for a
batched product: 57 MB per completion for SmolLM2-135M, at every `generate` call. Copying the input (batch x hidden
numbers) avoids it; the logits are the same.

Weights packed once per call (grpo/models/packed_weights.py): on a CPU, oneDNN copies every bf16 weight into its own
layout at each call of a linear layer, which costs more than the product when decoding; packing them once when
`generate` starts gives the same outputs, bit for bit.

Tokens sampled from variates computed at once (grpo/models/sampling.py): the same tokens as torch.multinomial from the
same random numbers, without its one-at-a-time logarithms on a CPU.

`exact_decoding` applies the last three wherever they apply: the evaluation, the pre-flight check and the verifier's
sampling use it; training switches each on its own (`speedups.*`).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import torch
from peft import PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer

from grpo.models.packed_weights import packed_linear_weights, why_not_pack
from grpo.models.sampling import vectorised_sampling, why_not_vectorise


def why_not_merge_model(model: torch.nn.Module) -> str | None:
    """Why `merged_lora` does not apply to this model (None: it does); also used by the evaluation."""
    if not isinstance(model, PeftModel):
        return "no LoRA adapter (full fine-tuning)"
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
def exact_decoding(model: torch.nn.Module):
    """Inside: `model.generate` runs with a contiguous LM-head input and, where they apply, weights packed for
    oneDNN and tokens sampled from variates computed at once: the same outputs, faster. Enter it after merging an
    adapter (packing copies the weights as they are)."""
    with ExitStack() as speedups:
        speedups.enter_context(contiguous_head_input(model))
        if why_not_pack(model) is None:
            speedups.enter_context(packed_linear_weights(model))
        if why_not_vectorise() is None:
            speedups.enter_context(vectorised_sampling())
        yield model
