"""Compare the runs of a sweep: one table row per job and a plot, from each run's own config and logged metrics.

    python -m grpo.train -m trainer.num_generations=4,8 reward.format.weight=0.25,0.5
    python -m grpo.report outputs/multirun/2025-01-31/12-00-00          # writes report.md, report.csv, report.png

A row holds the job's swept values, its status (finished: it wrote `final/`; failed: it started but did not; not
started: the grid sweep in `multirun.yaml` implies it but it has no dir), the final (last logged step) and best
mean `reward`, each reward's final mean (`rewards/<name>/mean`), the evaluated accuracy when `python -m
grpo.evaluate` left a `comparison.json` in the run dir, the training wall time and steps per second.
Also works on a folder of single runs (`outputs/<date>`): the keys whose values differ become the columns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from grpo.sweeps.collect import Sweep, load_sweep
from grpo.sweeps.plot import plot_sweep
from grpo.sweeps.table import report_table, to_markdown


def write_report(sweep_dir: Path, out: Path | None = None) -> tuple[Path, Path, Path]:
    """Write report.md, report.csv and report.png for the sweep in `sweep_dir` (into `out`, default the same)."""
    sweep = load_sweep(sweep_dir)
    if not sweep.runs:
        raise FileNotFoundError(f"{sweep_dir}: no runs (no */.hydra/overrides.yaml, no multirun.yaml)")
    out = out or sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    table = report_table(sweep)
    csv, markdown, png = out / "report.csv", out / "report.md", out / "report.png"
    table.to_csv(csv, index=False)
    plot_sweep(sweep, table, png)
    markdown.write_text(report_markdown(sweep, table, png.name))
    return markdown, csv, png


def report_markdown(sweep: Sweep, table: pd.DataFrame, plot: str) -> str:
    """The report page: the sweep's command, what final and best mean, the table and the plot."""
    lines = [f"# Sweep report: {sweep.dir}", ""]
    if sweep.command:
        lines += [f"`{sweep.command}`", ""]
    optuna = sweep.dir / "optimization_results.yaml"  # Optuna's sweeper writes its best trial here
    if optuna.is_file():
        best = OmegaConf.load(optuna)
        lines += [f"Optuna's best trial: {OmegaConf.to_container(best.best_params)} -> {best.best_value:.4g}", ""]
    lines += [
        f"{len(table)} runs, {sum(table.status == 'finished')} finished. final = last logged step, best = highest "
        "step; `reward` is the weighted sum of the rewards, each averaged over the step's completions.",
        "",
        to_markdown(table.drop(columns="dir")),  # the swept values name the run; report.csv has its dir
        "",
        f"![reward by run]({plot})",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grpo.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun dir, e.g. outputs/multirun/<date>/<time>")
    parser.add_argument("--out", type=Path, help="where to write report.{md,csv,png} (default: sweep_dir)")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        sys.exit(f"error: {args.sweep_dir} is not a directory")
    try:
        markdown, csv, png = write_report(args.sweep_dir, args.out)
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
    print(markdown.read_text())
    print(f"wrote {markdown}, {csv}, {png}")


if __name__ == "__main__":
    main()
