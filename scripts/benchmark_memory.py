"""Seconds and page faults of TRL's log-probabilities on a CPU (its `ChunkedLogProbFunction`, forward and backward)
with glibc's malloc as it comes and with freed memory kept in the process (`speedups.keep_freed_memory`).

TRL computes a step's log-probabilities through [tokens x 32768] float32 tiles of the logits, a new tensor for each
operation on them; glibc maps each one above 32 MB afresh, and filling it faults its pages in
(grpo/training/memory.py). Each setting runs in a fresh process (the setting holds for the whole process), on
SmolLM2-135M's LM head shape with random weights: `--calls` calls after two warm-up calls. Prints one JSON line:
seconds and minor page faults per call for each, and `default_over_keep`.

    python scripts/benchmark_memory.py                  # 392 tokens (8 completions of 48 + 1), ~30 s
    python scripts/benchmark_memory.py --tokens 100

Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

HIDDEN, VOCAB = 576, 49152  # SmolLM2-135M's LM head
TILE = 32768  # TRL's vocabulary chunk (trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=392, help="completion tokens scored in one pass")
    parser.add_argument("--calls", type=int, default=5, help="timed calls (after two warm-up calls)")
    parser.add_argument("--child", choices=["default", "keep"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_calls(args.child, args.tokens, args.calls)))
        return
    line = {"tokens": args.tokens, "calls": args.calls}
    for setting in ("default", "keep"):
        sizes = ["--tokens", str(args.tokens), "--calls", str(args.calls)]
        command = [sys.executable, __file__, "--child", setting, *sizes]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        line[setting] = json.loads(done.stdout.strip().splitlines()[-1])
    line["default_over_keep"] = round(line["default"]["s_per_call"] / line["keep"]["s_per_call"], 3)
    print(json.dumps(line))


def time_calls(setting: str, tokens: int, calls: int) -> dict:
    import torch
    from trl.kernels import ChunkedLogProbFunction

    from grpo.models.hardware import computes_bf16_natively
    from grpo.training.memory import keep_freed_memory

    if setting == "keep" and (reason := keep_freed_memory()):
        raise SystemExit(f"keep_freed_memory does not apply here: {reason}")
    bf16 = computes_bf16_natively()
    weight = (torch.randn(VOCAB, HIDDEN) * 0.02).to(torch.bfloat16 if bf16 else torch.float32)
    hidden = torch.randn(tokens, HIDDEN, requires_grad=True)
    targets = torch.randint(0, VOCAB, (tokens,))

    def call() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            log_probs, _, *_ = ChunkedLogProbFunction.apply(hidden, weight, None, targets, 1.0, TILE, None, 1.0,
                                                            ("entropy",))  # fmt: skip
        log_probs.sum().backward()

    call(), call()
    faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    for _ in range(calls):
        call()
    seconds = (time.perf_counter() - start) / calls
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / calls
    return {"s_per_call": round(seconds, 4), "page_faults_per_call": round(faults), "bf16": bf16}


if __name__ == "__main__":
    main()
