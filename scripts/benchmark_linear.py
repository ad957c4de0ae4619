"""Microseconds of one bf16 linear call at a decoding step's rows, torch's against oneDNN's with the weight packed once
(`speedups.pack_weights_for_generation`), for each layer shape of SmolLM2-135M, and what packing a weight costs.

torch's bf16 linear on a CPU copies the weight into oneDNN's blocked layout at every call; grpo packs it once per
`generate` call (grpo/models/packed_weights.py). Prints one JSON line: per layer, `linear_us`, `packed_us`,
`pack_once_us` (means over `--calls` calls) and whether the two products are equal bit for bit.

    python scripts/benchmark_linear.py             # 8 rows (a decoding step of 8 completions), ~10 s
    python scripts/benchmark_linear.py --rows 1 --calls 200

Needs a CPU that computes bf16 (AVX512-BF16 or AMX); run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

# SmolLM2-135M's linear layers (out x in features): attention, MLP and the LM head.
SHAPES = {"q_proj": (576, 576), "k_proj": (192, 576), "gate_proj": (1536, 576), "down_proj": (576, 1536),
          "lm_head": (49152, 576)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8, help="rows per call (completions decoded together)")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per measurement (after 5 warm-up calls)")
    args = parser.parse_args()
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise SystemExit("this CPU does not compute bf16 natively: packing does not apply here")

    from grpo.models.packed_weights import linear_packed

    line = {"device": "cpu", "torch_threads": torch.get_num_threads(), "rows": args.rows}
    for name, (out_features, in_features) in SHAPES.items():
        inputs = torch.randn(args.rows, 1, in_features).to(torch.bfloat16)
        weight = torch.randn(out_features, in_features).to(torch.bfloat16)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
        line[name] = {
            "linear_us": microseconds(lambda: torch.nn.functional.linear(inputs, weight), args.calls),
            "packed_us": microseconds(lambda: linear_packed(inputs, packed, None), args.calls),
            "pack_once_us": microseconds(lambda: torch.ops.mkldnn._reorder_linear_weight(weight, None), 10),
            "bit_exact": torch.equal(linear_packed(inputs, packed, None), torch.nn.functional.linear(inputs, weight)),
        }
    print(json.dumps(line))


def microseconds(call, calls: int) -> float:
    for _ in range(5):
        call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return round((time.perf_counter() - start) / calls * 1e6, 1)


if __name__ == "__main__":
    main()
