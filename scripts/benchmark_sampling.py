"""Milliseconds of one sampling call as `generate` makes it (one token per row from float32 probabilities):
`torch.multinomial` against the vectorised draw of `speedups.vectorised_sampling` (grpo/models/sampling.py), and
whether they drew the same tokens and left the generator in the same state.

    python scripts/benchmark_sampling.py                       # 8 rows of SmolLM2's 49152 tokens, ~5 s
    python scripts/benchmark_sampling.py --rows 32 --vocab 151936   # Qwen2.5's vocabulary

Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from grpo.models.sampling import draws_like_torch, torch_multinomial, vectorised_multinomial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8, help="completions sampled together")
    parser.add_argument("--vocab", type=int, default=49152, help="vocabulary size")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per measurement (after one warm-up)")
    args = parser.parse_args()
    probs = torch.softmax(torch.randn(args.rows, args.vocab) * 3, dim=-1)
    line = {
        "device": "cpu", "torch_threads": torch.get_num_threads(), "rows": args.rows, "vocab": args.vocab,
        "multinomial_ms": milliseconds(lambda: torch_multinomial(probs, 1), args.calls),
        "vectorised_ms": milliseconds(lambda: vectorised_multinomial(probs, 1), args.calls),
        "same_draws": all(draws_like_torch(probs, seed) for seed in range(5)),
    }  # fmt: skip
    line["multinomial_over_vectorised"] = round(line["multinomial_ms"] / line["vectorised_ms"], 3)
    print(json.dumps(line))


def milliseconds(call, calls: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return round((time.perf_counter() - start) / calls * 1000, 3)


if __name__ == "__main__":
    main()
