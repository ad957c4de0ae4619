"""Run one training recipe on several seeds and print one table: does it make the model better on held-out problems?

Each seed is one `python -m grpo.train ... seed=S eval.after_training=true` run, one after another (two trainings
at once fight over the CPU cores), in `<out>/seed-S/`. Each run ends by comparing the base and the trained model
greedily on the held-out split (`<run>/eval/comparison.json`); this script collects those into one table: seed, base
accuracy, trained accuracy, gain, problems fixed, problems broken, wall time of the whole run (training and
evaluation). Written to `<out>/recipe.md` and `<out>/recipe.json` too.

    python scripts/recipe_seeds.py --seeds 1 2 3                      # the quickstart's recipe
    python scripts/recipe_seeds.py --seeds 1 2 3 -- model=smollm2-135m dataset=arithmetic mode=quickstart \\
        trainer.max_steps=40 trainer.learning_rate=2e-4                # a candidate
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

QUICKSTART = ["model=smollm2-135m", "dataset=arithmetic", "mode=quickstart"]
COLUMNS = ("seed", "status", "base acc", "trained acc", "gain", "fixed", "broken", "wall time (s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/recipe/<date>_<time>")
    parser.add_argument("overrides", nargs="*", help="grpo.train overrides (after --); default: the quickstart's")
    args = parser.parse_args(argv)
    overrides = args.overrides or QUICKSTART
    out = args.out or Path("outputs/recipe") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)

    rows = [run_seed(seed, overrides, out / f"seed-{seed}") for seed in args.seeds]
    table = markdown_table(rows, overrides)
    (out / "recipe.md").write_text(table)
    (out / "recipe.json").write_text(json.dumps({"overrides": overrides, "rows": rows}, indent=2) + "\n")
    print(table)
    return 0 if all(row["status"] == "finished" for row in rows) else 1


def run_seed(seed: int, overrides: list[str], run_dir: Path) -> dict:
    """Train and evaluate one seed in `run_dir`; its table row (status `failed` with the log's last line)."""
    command = [
        sys.executable, "-m", "grpo.train", *overrides,
        f"seed={seed}", "eval.after_training=true", f"hydra.run.dir={run_dir}",
    ]
    print(f"seed {seed}: {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "recipe_run.log", "w") as log_file:
        finished = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, env=os.environ).returncode == 0
    wall = round(time.perf_counter() - start, 1)
    report = run_dir / "eval" / "comparison.json"
    if not finished or not report.is_file():
        reason = failure_reason((run_dir / "recipe_run.log").read_text())
        print(f"seed {seed}: failed after {wall} s: {reason}", flush=True)
        return {"seed": seed, "status": "failed", "error": reason, "wall_s": wall}
    comparison = json.loads(report.read_text())
    row = {
        "seed": seed,
        "status": "finished",
        "base_accuracy": comparison["base"]["accuracy"],
        "trained_accuracy": comparison["trained"]["accuracy"],
        "gain": comparison["trained"]["accuracy"] - comparison["base"]["accuracy"],
        "fixed": comparison["outcomes"]["fixed"],
        "broken": comparison["outcomes"]["broken"],
        "problems": comparison["base"]["n"],
        "wall_s": wall,
    }
    print(f"seed {seed}: {row}", flush=True)
    return row


def failure_reason(log: str) -> str:
    """grpo.train's one-line `error: ...` when it wrote one, else the log's last line that is not Hydra's hint."""
    lines = [line for line in log.strip().splitlines() if line and "HYDRA_FULL_ERROR" not in line]
    errors = [line for line in lines if line.startswith("error: ")]
    return (errors or lines or ["no output"])[-1]


def markdown_table(rows: list[dict], overrides: list[str]) -> str:
    """The table over seeds, with a mean row over the finished ones."""
    lines = [
        f"`python -m grpo.train {' '.join(overrides)} seed=S eval.after_training=true`",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cells(row)) + " |")
    finished = [row for row in rows if row["status"] == "finished"]
    if finished:
        mean = {key: sum(row[key] for row in finished) / len(finished) for key in _NUMBERS}
        lines.append("| " + " | ".join(_cells({"seed": "mean", "status": f"{len(finished)}/{len(rows)}", **mean})) + " |")
        lines += ["", f"{finished[0]['problems']} held-out problems per seed, greedy decoding."]
    return "\n".join(lines) + "\n"


_NUMBERS = ("base_accuracy", "trained_accuracy", "gain", "fixed", "broken", "wall_s")


def _cells(row: dict) -> list[str]:
    if row["status"] == "failed":
        return [str(row["seed"]), "failed", "", "", "", "", "", f"{row['wall_s']:.0f}"]
    return [
        str(row["seed"]),
        row["status"],
        f"{row['base_accuracy']:.3f}",
        f"{row['trained_accuracy']:.3f}",
        f"{row['gain']:+.3f}",
        f"{row['fixed']:.3g}",
        f"{row['broken']:.3g}",
        f"{row['wall_s']:.0f}",
    ]


if __name__ == "__main__":
    sys.exit(main())
