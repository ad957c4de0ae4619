"""Compare the runs of a sweep: a table and a plot, from each run's own config, logged metrics and evaluation.

    python -m grpo.train -m trainer.num_generations=4,8 reward.format.weight=0.25,0.5
    python -m grpo.report outputs/multirun/2025-01-31/12-00-00          # writes report.md, report.csv, report.png

    python -m grpo.train -m reward=math,math_closeness seed=1,2,3,4,5 eval.after_training=true
    python -m grpo.report outputs/multirun/2025-01-31/13-00-00 --baseline reward=math

Without a `seed` axis, a row per job: its swept values, its status (finished: it wrote `final/`; failed: it started
but did not; not started: the grid sweep in `multirun.yaml` implies it but it has no dir), the final (last logged
step) and best mean `reward`, each reward's final mean (`rewards/<name>/mean`), the held-out accuracy and gain when
the run has a `comparison.json`, the training wall time and steps per second.

With a `seed` axis, a row per setting (the jobs that differ only in `seed`): how many seeds finished, the mean
held-out accuracy and gain over base with their 95% Student t-intervals, fixed and broken problems summed, mean final
reward and wall time; the seeds that failed (with their errors) or never started are listed. `--baseline key=value
...` names one setting and compares every other with it seed by seed. `--rank` orders the rows.
Also works on a folder of single runs (`outputs/<date>`): the keys whose values differ become the columns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpo.errors import ConfigError
from grpo.sweeps.baseline import find_baseline
from grpo.sweeps.collect import load_jobs, with_metrics
from grpo.sweeps.markdown import report_markdown
from grpo.sweeps.plot import plot_jobs, plot_settings
from grpo.sweeps.settings import group_settings, has_seed_axis
from grpo.sweeps.table import ACCURACY, RANKS, rank_rows, report_table, settings_table


def write_report(
    sweep_dir: Path, out: Path | None = None, baseline: str | None = None, rank: str | None = None
) -> tuple[Path, Path, Path]:
    """Write report.md, report.csv and report.png for the sweep in `sweep_dir` (into `out`, default the same)."""
    sweep = load_jobs(sweep_dir)
    if not sweep.runs:
        raise FileNotFoundError(f"{sweep_dir}: no runs (no */.hydra/overrides.yaml, no multirun.yaml)")
    if baseline:
        find_baseline(group_settings(sweep), baseline)  # refused on the job list alone, before any run's logs are read
    sweep = with_metrics(sweep)
    settings = group_settings(sweep)
    base = find_baseline(settings, baseline) if baseline else None
    out = out or sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    csv, markdown, png = out / "report.csv", out / "report.md", out / "report.png"
    if has_seed_axis(sweep):
        table = rank_rows(settings_table(sweep, settings, base), rank)
        settings = [settings[position] for position in table.index]
        plot_settings(settings, ACCURACY in table.columns, png)
    else:
        table = rank_rows(report_table(sweep, base), rank)
        plot_jobs([sweep.runs[position] for position in table.index], sweep.keys, table, png)
        settings = None
    table.to_csv(csv, index=False)
    markdown.write_text(report_markdown(sweep, table, png.name, settings, base))
    return markdown, csv, png


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grpo.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun dir, e.g. outputs/multirun/<date>/<time>")
    parser.add_argument("--out", type=Path, help="where to write report.{md,csv,png} (default: sweep_dir)")
    parser.add_argument(
        "--baseline", metavar="'KEY=VALUE ...'",
        help="the setting to compare every other with, seed by seed, by its swept values (e.g. 'reward=math')",
    )  # fmt: skip
    parser.add_argument(
        "--rank", choices=list(RANKS),
        help="order rows by held-out accuracy, gain, final reward (best first) or launch order (job); "
        "default: accuracy when runs were evaluated, else reward",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        sys.exit(f"error: {args.sweep_dir} is not a directory")
    try:
        markdown, csv, png = write_report(args.sweep_dir, args.out, args.baseline, args.rank)
    except (FileNotFoundError, ConfigError) as error:
        sys.exit(f"error: {error}")
    print(markdown.read_text())
    print(f"wrote {markdown}, {csv}, {png}")


if __name__ == "__main__":
    main()
