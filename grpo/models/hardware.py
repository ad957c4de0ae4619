"""What this machine computes well: an accelerator, and bf16 in hardware (GPU, or a CPU with AVX512-BF16 or AMX)."""

from __future__ import annotations


def hardware_defaults(trainer: dict) -> dict:
    """`use_cpu` and `bf16` for this machine, where the user left them to us (`trainer.bf16: null`, `use_cpu: false`).

    bf16 autocast only pays where the hardware computes bf16: on a CPU without AVX512-BF16 or AMX, torch emulates it,
    many times slower than float32 (scripts/benchmark_dtype.py; docs/performance.md). Without an accelerator,
    Trainer also refuses bf16 unless told that it runs on the CPU."""
    bf16 = trainer.get("bf16")
    if bf16 is None:
        bf16 = not trainer.get("fp16") and computes_bf16_natively()
    return {"use_cpu": trainer.get("use_cpu") or not has_accelerator(), "bf16": bf16}


def computes_bf16_natively() -> bool:
    """A GPU with bf16 support, or a CPU with AVX512-BF16 or AMX (what oneDNN's bf16 kernels need)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    if has_accelerator():  # MPS, XPU: TRL's own default
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN: assume the slow path
        return False


def has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available() or torch.xpu.is_available()

