"""Run one training recipe on several seeds and report it: a shorthand for a seed multirun and its sweep report.

    python scripts/recipe_seeds.py --seeds 1 2 3 --out outputs/recipe/quickstart              # the quickstart's recipe
    python scripts/recipe_seeds.py --seeds 1 2 3 -- model=smollm2-135m dataset=arithmetic mode=quickstart \\
        trainer.max_steps=40 trainer.learning_rate=2e-4                                        # a candidate

runs exactly

    python -m grpo.train -m <overrides> seed=1,2,3 eval.after_training=true hydra.sweep.dir=<out> \\
        hydra.job.config.override_dirname.exclude_keys=[<the overrides' keys>]
    python -m grpo.report <out>

so each seed trains in `<out>/seed=S/` (one after another: two trainings at once fight over the CPU cores) and ends
by comparing the base and the trained model on the held-out split; the report (`<out>/report.md`, `report.csv`,
`report.png`) gives the mean held-out accuracy and gain over the seeds with their 95% confidence intervals
(docs/sweeps.md). Swept overrides (`trainer.beta=0,0.04`) stay in the job dir names and become rows of the report.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from grpo.sweeps.jobs import swept_keys

QUICKSTART = ["model=smollm2-135m", "dataset=arithmetic", "mode=quickstart"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/recipe/<date>_<time>")
    parser.add_argument("overrides", nargs="*", help="grpo.train overrides (after --); default: the quickstart's")
    args = parser.parse_args(argv)
    out = args.out or Path("outputs/recipe") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    command = multirun_command(args.seeds, args.overrides or QUICKSTART, out)
    print(" ".join(command[1:]), flush=True)
    trained = subprocess.run(command, check=False).returncode
    if not (out / "multirun.yaml").is_file():  # refused before any job started: grpo.train has said why
        return trained or 1
    reported = subprocess.run([sys.executable, "-m", "grpo.report", str(out)], check=False).returncode
    return 1 if trained or reported else 0  # a failed seed fails the script, after the report has listed it


def multirun_command(seeds: list[int], overrides: list[str], out: Path) -> list[str]:
    """The `grpo.train -m` command: the overrides on every seed, evaluated, job dirs named by the swept keys alone."""
    fixed = [key for key in _keys(overrides) if key not in swept_keys(None, overrides)]
    # `sweep` stays excluded as conf/train.yaml has it: +sweep=<preset> names the sweep, not a job.
    exclude = ",".join(["sweep", *fixed, "eval.after_training"])
    return [
        sys.executable, "-m", "grpo.train", "-m", *overrides,
        f"seed={','.join(map(str, seeds))}", "eval.after_training=true", f"hydra.sweep.dir={out}",
        f"hydra.job.config.override_dirname.exclude_keys=[{exclude}]",
    ]  # fmt: skip


def _keys(overrides: list[str]) -> list[str]:
    # Hydra's own settings (hydra.*) never name job dirs.
    keys = [line.partition("=")[0].lstrip("+~") for line in overrides]
    return list(dict.fromkeys(key for key in keys if not key.startswith(("hydra.", "hydra/"))))


if __name__ == "__main__":
    sys.exit(main())
