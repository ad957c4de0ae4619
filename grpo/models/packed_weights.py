"""Linear layers that read weights packed once for oneDNN while a model generates (CPU, bf16 weights).

torch computes a bf16 linear layer on a CPU with oneDNN, whose kernels read the weight in a blocked layout (pairs of
bf16 along the input dimension for AVX512-BF16 and AMX): at every call the whole weight is first copied into that
layout. A training forward spreads the copy over hundreds of rows; decoding runs every layer once per token on one row
per completion, and there the copy weighs: a decoding step's call of SmolLM2-135M's layers is 1.3-2.1x faster with
the weight packed beforehand (docs/experiments/2026-12-07-packed-weights.md). Inside `packed_linear_weights` each
bf16 linear layer is packed once and calls oneDNN's linear with its packed weight.

The outputs are bit for bit those of `torch.nn.functional.linear` (oneDNN's products either way). That is checked on
this CPU before packing (oneDNN chooses its kernels by CPU), once per weight shape, and the speed-up steps aside where
it does not hold. The weights must not change inside the context (merge an adapter before entering it); a layer asked
for a gradient runs as before (the packed op has no backward).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache

import torch


def why_not_pack(model: torch.nn.Module) -> str | None:
    """Why `packed_linear_weights` does not apply to this model on this machine (None: it does)."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return f"torch {torch.__version__} was built without oneDNN's linear"
    layers = bf16_linear_layers(model)
    if not layers:
        return "no bf16 linear layer on the CPU (packing pays where oneDNN copies bf16 weights at every call)"
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "this CPU does not compute bf16 natively"
    for shape in sorted({tuple(layer.weight.shape) for layer in layers}):
        if not packed_product_is_exact(shape):
            return f"oneDNN's packed product differs from torch's for a {shape[0]} x {shape[1]} weight on this CPU"
    return None


def bf16_linear_layers(model: torch.nn.Module) -> list[torch.nn.Linear]:
    """The plain linear layers with bf16 weights (and bias) on the CPU: the base layers under a LoRA adapter, the LM
    head; not the adapter's own (fp32) matrices."""
    return [
        module
        for module in model.modules()
        if type(module) is torch.nn.Linear
        and module.weight.dtype == torch.bfloat16
        and module.weight.device.type == "cpu"
        and (module.bias is None or module.bias.dtype == torch.bfloat16)
    ]


@cache
def packed_product_is_exact(shape: tuple[int, int]) -> bool:
    """Whether the packed product equals torch's linear, bit for bit, for a weight of this shape, with a decoding step's
    few rows and a prefill's many."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(shape, generator=generator).to(torch.bfloat16)
    packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
    for rows in (1, 8, 97):
        inputs = torch.randn(rows, shape[1], generator=generator).to(torch.bfloat16)
        if not torch.equal(linear_packed(inputs, packed, None), torch.nn.functional.linear(inputs, weight)):
            return False
    return True


@contextmanager
def packed_linear_weights(model: torch.nn.Module):
    """Inside: each bf16 linear layer of the model computes with its weight packed for oneDNN on entry (call only
    where `why_not_pack(model)` is None). After (even on error): the layers as they were."""
    layers = bf16_linear_layers(model)
    for layer in layers:
        layer.forward = packed_forward(layer, torch.ops.mkldnn._reorder_linear_weight(layer.weight.detach(), None))
    try:
        yield model
    finally:
        for layer in layers:
            del layer.forward  # the instance attribute: the class's forward again


def packed_forward(layer: torch.nn.Linear, packed: torch.Tensor):
    original = type(layer).forward.__get__(layer)

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and (inputs.requires_grad or layer.weight.requires_grad):
            return original(inputs)
        if inputs.dtype != packed.dtype:
            # Under bf16 autocast, torch's linear casts its input to bf16 first; otherwise it refuses mixed dtypes.
            if not (torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == packed.dtype):
                return original(inputs)
            inputs = inputs.to(packed.dtype)
        return linear_packed(inputs, packed, layer.bias)

    return forward


def linear_packed(inputs: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(inputs, packed, bias, "none", [], "")
