"""Seconds to complete the held-out problems with the base and the trained model, as `eval.after_training` does.

Loads the embedded SmolLM2-135M-Instruct as the quickstart does (its dtype, the preset's LoRA adapter with non-zero B,
as after training; base = adapter off, trained = adapter merged) and times `grpo.evaluation.compare.complete_both` on the
first `--problems` held-out arithmetic problems, greedy, `--max-new-tokens` tokens, for each `--batch-sizes`, with
grpo's exact decoding speed-ups (the default) and without each: `strided_head` (torch copies the frozen head weight
once per prompt at the first decoding step) and `unpacked` (oneDNN copies every bf16 weight into its layout at every
call; on a CPU without bf16 the two are the same run). Prints one JSON line: seconds per variant and their ratios to
the default.

    python scripts/benchmark_eval.py                          # ~3 min on 2 CPU cores
    python scripts/benchmark_eval.py --batch-sizes 100 --problems 100
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from unittest import mock

import torch

from grpo.models.generation import contiguous_head_input
from grpo.models.packed_weights import packed_linear_weights, why_not_pack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 100])
    parser.add_argument("--max-new-tokens", type=int, default=32, help="the quickstart's completion budget")
    args = parser.parse_args()

    from benchmark import compose_preset
    from benchmark_generation import lora_policy
    from omegaconf import OmegaConf

    import grpo.evaluation.compare as compare
    from grpo.evaluation.after_training import build_held_out

    model, tokenizer, _ = lora_policy()
    preset = compose_preset()
    preset.eval.examples = args.problems
    prompts = list(build_held_out(preset.dataset, preset.eval)["prompt"])
    line = {"device": "cpu", "torch_threads": torch.get_num_threads(), "problems": len(prompts),
            "max_new_tokens": args.max_new_tokens}  # fmt: skip

    def both(batch_size: int) -> float:
        settings = OmegaConf.create({"batch_size": batch_size, "max_new_tokens": args.max_new_tokens,
                                     "do_sample": False, "temperature": 1.0})  # fmt: skip
        start = time.perf_counter()
        compare.complete_both(settings, model, tokenizer, prompts)
        return round(time.perf_counter() - start, 2)

    both(8)  # warm-up: first calls allocate and pick kernels
    without = {"strided_head": _packed_only, "unpacked": contiguous_head_input}
    for batch_size in args.batch_sizes:
        line[f"batch_{batch_size}_s"] = both(batch_size)
        for name, decoding in without.items():
            with mock.patch.object(compare, "exact_decoding", decoding):
                line[f"batch_{batch_size}_{name}_s"] = both(batch_size)
            line[f"batch_{batch_size}_{name}_over_default"] = round(
                line[f"batch_{batch_size}_{name}_s"] / line[f"batch_{batch_size}_s"], 3
            )
    print(json.dumps(line))


@contextmanager
def _packed_only(model):
    """exact_decoding without the contiguous head input."""
    if why_not_pack(model) is not None:
        yield model
        return
    with packed_linear_weights(model):
        yield model


if __name__ == "__main__":
    main()
