"""How much `speedups.shared_prefix` gains as prompts grow and groups widen: scripts/benchmark.py, with and without it,
once per cell, then a Markdown table of seconds per step and their ratio.

Cells: the arithmetic task's prompt at each `--groups` size, and GSM8K prompts with each `--shots` count of worked
example turns at group size `--shots-group`; `--full` runs every prompt at every group size instead.

    python scripts/shared_prefix_table.py --gsm8k data/gsm8k/train.jsonl                 # 6 cells, 2 runs each
    python scripts/shared_prefix_table.py --gsm8k data/gsm8k/train.jsonl --repeats 2 --full

Each cell's two runs are fresh processes timed by benchmark.py (median step after step 1); the ratio is
no_shared_prefix / default, so 1.5 means the default (with it) is 1.5x faster. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parent / "benchmark.py"


def main() -> None:
    args = parse_args()
    rows = []
    for shots, group in cells(args):
        line = benchmark(args, shots, group)
        rows.append(line)
        print(json.dumps(line), file=sys.stderr, flush=True)
    print(table(rows))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="local model folder (default: the embedded SmolLM2-135M)")
    parser.add_argument("--gsm8k", default=None, metavar="FILE", help="a local GSM8K JSONL (without: arithmetic only)")
    parser.add_argument("--shots", type=int, nargs="*", default=[1, 4, 8], help="example turns in GSM8K prompts")
    parser.add_argument("--groups", type=int, nargs="*", default=[4, 8, 16], help="group sizes (completions a step)")
    parser.add_argument("--shots-group", type=int, default=8, help="group size of the GSM8K cells (unless --full)")
    parser.add_argument("--full", action="store_true", help="every prompt at every group size")
    parser.add_argument("--steps", type=int, default=4, help="steps per run (timed: 2..N)")
    parser.add_argument("--length", type=int, default=48, help="tokens per completion (fixed)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if args.gsm8k and not Path(args.gsm8k).is_file():
        parser.error(f"--gsm8k {args.gsm8k}: no such file (a GSM8K JSONL with question and answer per row)")
    return args


def cells(args: argparse.Namespace) -> list[tuple[int | None, int]]:
    """(shots, group size) per cell; shots None is the arithmetic task's own prompt."""
    prompts = [None] + (args.shots if args.gsm8k else [])
    if args.full:
        return [(shots, group) for shots in prompts for group in args.groups]
    return [(None, group) for group in args.groups] + [(shots, args.shots_group) for shots in prompts[1:]]


def benchmark(args: argparse.Namespace, shots: int | None, group: int) -> dict:
    command = [sys.executable, str(BENCHMARK), "--no-plain", "--without", "shared_prefix", "--steps", str(args.steps),
               "--completions", str(group), "--length", str(args.length), "--repeats", str(args.repeats)]  # fmt: skip
    if shots is not None:
        command += ["--gsm8k", args.gsm8k, "--shots", str(shots)]
    if args.model:
        command += ["--model", args.model]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"[shared_prefix_table] {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = [
        "| prompts | prompt tokens | group size | s/step without | s/step with | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        without, default = row["runs"]["no_shared_prefix"]["s_per_step"], row["runs"]["grpo"]["s_per_step"]
        lines.append(
            f"| {row['prompts']} | {row['prompt_tokens']:.0f} | {row['completions_per_step']} | {without:.2f} "
            f"| {default:.2f} | {without / default:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
