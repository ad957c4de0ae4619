"""Seconds per `generate` call of a LoRA policy, as GRPO samples a group: one prompt, `--completions` samples.

Times, on CPU and in one process, the ways a step's completions can be generated with transformers, on the
embedded SmolLM2-135M-Instruct (in the dtype `model=smollm2-135m` loads it in here) with the preset's LoRA adapter
(its B matrices made non-zero, as after training):
- `unmerged`: PEFT's LoRA layers as they are (what TRL does);
- `merged`: the adapter merged into the base weights for the call (grpo's `speedups.merge_lora_for_generation`);
- `merged_contiguous_head`: merged, and the LM head given a contiguous input (`speedups.contiguous_head_input`);
- `merged_contiguous_head_packed`: and, on a CPU with bf16, the weights packed for oneDNN once per call
  (`speedups.pack_weights_for_generation`): grpo's default (absent where packing does not apply);
- `merged_compiled` (`--compile`): merged, with a static KV cache and torch.compile (transformers' auto-compile of
  the decoding step); its first calls compile, reported apart as `compile_s`.
Prints one JSON line: the median seconds per call of each (after one warm-up call) and their ratios to `unmerged`.

    python scripts/benchmark_generation.py              # ~1 min on 2 CPU cores
    python scripts/benchmark_generation.py --compile    # + compiling: ~15 s with a warm inductor cache, ~70 s cold
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=8)
    parser.add_argument("--length", type=int, default=48, help="tokens per completion (fixed)")
    parser.add_argument("--calls", type=int, default=5, help="timed calls per variant (after one warm-up call)")
    parser.add_argument("--compile", action="store_true", help="also time a statically cached, compiled decoder")
    args = parser.parse_args()

    model, tokenizer, prompt = lora_policy()
    inputs = tokenizer([prompt] * args.completions, return_tensors="pt")
    settings = dict(max_new_tokens=args.length, min_new_tokens=args.length, do_sample=True)
    line = {"device": "cpu", "torch_threads": torch.get_num_threads(), "prompt_tokens": inputs.input_ids.shape[1],
            "completions": args.completions, "completion_tokens": args.length}  # fmt: skip

    from grpo.models.generation import contiguous_head_input, merged_lora
    from grpo.models.packed_weights import packed_linear_weights, why_not_pack

    def packed_generate():  # packed at every call, as training does: the packing is timed too
        with packed_linear_weights(model):
            return model.generate(**inputs, **settings)

    _, line["unmerged_s"] = timed(lambda: model.generate(**inputs, **settings), args.calls)
    with merged_lora(model):
        _, line["merged_s"] = timed(lambda: model.generate(**inputs, **settings), args.calls)
        with contiguous_head_input(model):
            _, line["merged_contiguous_head_s"] = timed(lambda: model.generate(**inputs, **settings), args.calls)
            if why_not_pack(model) is None:
                _, line["merged_contiguous_head_packed_s"] = timed(packed_generate, args.calls)
        if args.compile:
            from transformers.generation import CompileConfig

            config = CompileConfig(mode="default")
            config._compile_all_devices = True  # transformers auto-compiles on accelerators only unless told
            compiled = dict(settings, cache_implementation="static", compile_config=config)
            # The first call compiles, the second recompiles for dynamic shapes: their time is the compile cost.
            line["compile_s"], line["merged_compiled_s"] = timed(
                lambda: model.generate(**inputs, **compiled), args.calls, warm_up=2
            )
    for name in ("merged", "merged_contiguous_head", "merged_contiguous_head_packed", "merged_compiled"):
        if f"{name}_s" in line:
            line[f"unmerged_over_{name}"] = round(line["unmerged_s"] / line[f"{name}_s"], 3)
    print(json.dumps(line))


def lora_policy(dtype: torch.dtype | None = None):
    """The embedded model in `dtype` (default: the smollm2 preset's) with its LoRA (non-zero B), its tokenizer and an
    arithmetic prompt."""
    from benchmark import compose_preset, embedded_model
    from hydra.utils import instantiate
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grpo.data import build_dataset
    from grpo.models.load import torch_dtype

    preset = compose_preset()
    folder = embedded_model()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch_dtype(preset.model.dtype))
    model = get_peft_model(model, instantiate(preset.model.lora, _convert_="all")).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=1e-3)
    row = build_dataset(preset.dataset)[0]
    return model, tokenizer, tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)


def timed(call, calls: int, warm_up: int = 1) -> tuple[float, float]:
    """Total seconds of `warm_up` first calls, and the median seconds of the `calls` after them."""
    from grpo.models.hardware import computes_bf16_natively

    seconds = []
    # As TRL generates under trainer.bf16, which grpo turns on where the hardware computes bf16.
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=computes_bf16_natively()):
        for _ in range(warm_up + calls):
            start = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - start)
    return round(sum(seconds[:warm_up]), 2), round(statistics.median(seconds[warm_up:]), 3)


if __name__ == "__main__":
    main()
