"""Seconds of a GRPO step's two halves (sampling, and the LoRA policy's forward and backward) in each precision.

Whether bf16 pays depends on the hardware: a GPU with bf16 or a CPU with AVX512-BF16 or AMX computes it natively;
elsewhere torch emulates it. `model.dtype=bfloat16_if_native` and `trainer.bf16=null` (the embedded preset's
defaults) decide by `grpo.models.hardware.computes_bf16_natively`; this script shows what that decision is worth here. On the
embedded SmolLM2-135M-Instruct with the preset's LoRA it times, after one warm-up call each:
- `float32`: fp32 weights, no autocast;
- `bfloat16`: bf16 weights under bf16 autocast (the preset where bf16 is native);
- `float32_autocast`: fp32 weights under bf16 autocast (TRL's default `bf16=true` over fp32 weights).
Prints one JSON line: seconds per `generate` call and per forward+backward, and each variant's ratio to float32.

    python scripts/benchmark_dtype.py            # ~2 min where bf16 is native, ~5 min on an AVX2-only CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

VARIANTS = {"float32": (torch.float32, False), "bfloat16": (torch.bfloat16, True), "float32_autocast": (torch.float32, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=5, help="sequences per call")
    parser.add_argument("--length", type=int, default=32, help="tokens generated per sequence (fixed)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()

    from grpo.models.hardware import computes_bf16_natively

    line = {"computes_bf16_natively": computes_bf16_natively(), "completions": args.completions, "tokens": args.length}
    for name in args.variants:
        dtype, autocast = VARIANTS[name]
        model, inputs = policy(dtype, args.completions)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            line[f"{name}_generate_s"] = timed(lambda: sample(model, inputs, args.length))
            sequences = sample(model, inputs, args.length)
            line[f"{name}_forward_backward_s"] = timed(lambda: forward_backward(model, sequences))
        print(f"[benchmark_dtype] {name}: {line[f'{name}_generate_s']} s generate, "
              f"{line[f'{name}_forward_backward_s']} s forward+backward", file=sys.stderr, flush=True)  # fmt: skip
    for name in args.variants if "float32" in args.variants else []:
        for part in ("generate", "forward_backward"):
            line[f"{name}_over_float32_{part}"] = round(line[f"{name}_{part}_s"] / line[f"float32_{part}_s"], 2)
    print(json.dumps(line))


def policy(dtype: torch.dtype, completions: int):
    """The embedded model in `dtype` with the preset's LoRA (non-zero B), and a batch of one arithmetic prompt."""
    from benchmark_generation import lora_policy

    model, tokenizer, prompt = lora_policy(dtype)
    return model, tokenizer([prompt] * completions, return_tensors="pt")


def sample(model, inputs, length: int) -> torch.Tensor:
    with torch.no_grad():
        return model.generate(**inputs, max_new_tokens=length, min_new_tokens=length, do_sample=True)


def forward_backward(model, sequences: torch.Tensor) -> None:
    """What a GRPO step does with the sampled sequences: log-probabilities under the policy, and their gradient."""
    model.zero_grad(set_to_none=True)
    logits = model(sequences).logits[:, :-1].float()
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, sequences[:, 1:, None]).mean()
    log_probs.backward()


def timed(call) -> float:
    call()  # warm-up
    start = time.perf_counter()
    call()
    return round(time.perf_counter() - start, 2)


if __name__ == "__main__":
    main()
