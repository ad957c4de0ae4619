"""The sweep report's page (report.md): how the sweep was launched, what the columns mean, the tables and the plot."""

from __future__ import annotations

import math

import pandas as pd
from omegaconf import OmegaConf

from grpo.sweeps.baseline import DIFFERENCE, PAIRED_COLUMNS
from grpo.sweeps.collect import FAILED, FINISHED, NOT_STARTED, Sweep
from grpo.sweeps.settings import LEVEL, SEED_KEY, Setting, setting_keys
from grpo.sweeps.table import ACCURACY, GAIN, NOTES

CI = f"{LEVEL:.0%} CI"
JOB_COLUMNS = (
    "final = last logged step, best = highest step; `reward` is the weighted sum of the rewards, each averaged over "
    "the step's completions."
)
EVAL_COLUMNS = (
    f"`{ACCURACY}`: the trained model's accuracy on the held-out problems (the run's comparison.json); `{GAIN}`: "
    "trained minus base accuracy on the same problems; `fixed` / `broken`: problems training turned right / wrong."
)


def report_markdown(
    sweep: Sweep, table: pd.DataFrame, plot: str, settings: list[Setting] | None, baseline: Setting | None
) -> str:
    """The page: one row per setting when `settings` (a seed sweep) is given, else one per job; then the baseline."""
    lines = [f"# Sweep report: {sweep.dir}", ""]
    if sweep.command:
        lines += [f"`{sweep.command}`", ""]
    optuna = sweep.dir / "optimization_results.yaml"  # Optuna's sweeper writes its best trial here
    if optuna.is_file():
        best = OmegaConf.load(optuna)
        lines += [f"Optuna's best trial: {OmegaConf.to_container(best.best_params)} -> {best.best_value:.4g}", ""]
    lines += _settings_section(sweep, table, settings) if settings is not None else _jobs_section(table)
    if baseline is not None:
        lines += _baseline_section(sweep, table, baseline)
    lines += [f"![held-out accuracy by setting]({plot})" if settings is not None else f"![reward by run]({plot})", ""]
    return "\n".join(lines)


def _jobs_section(table: pd.DataFrame) -> list[str]:
    finished = sum(table.status == FINISHED)
    explained = JOB_COLUMNS + (" " + EVAL_COLUMNS if ACCURACY in table.columns else "")
    shown = table.drop(columns=["dir", *(c for c in PAIRED_COLUMNS if c in table.columns)])  # report.csv has them
    return [f"{len(table)} runs, {finished} finished. {explained}", "", to_markdown(shown), ""]


def _settings_section(sweep: Sweep, table: pd.DataFrame, settings: list[Setting]) -> list[str]:
    seeds = list(dict.fromkeys(run.value(SEED_KEY) for run in sweep.runs))
    statuses = [run.status for setting in settings for run in setting.runs]
    counts = ", ".join(
        f"{statuses.count(status)} {status}" for status in (FINISHED, FAILED, NOT_STARTED) if status in statuses
    )
    evaluated = EVAL_COLUMNS + " `fixed` and `broken` are summed over seeds. " if ACCURACY in table.columns else ""
    intro = (
        f"{_count(len(sweep.runs), 'job')}: {_count(len(settings), 'setting')} x {_count(len(seeds), 'seed')} "
        f"({', '.join(map(str, seeds))}), "
        f"{counts}. One row per setting: `n` seeds finished, `failed` started but did not finish (those and any not "
        "started are listed below the table). "
        f"Each number is the mean over the finished seeds; `[low, high]` is its {CI}, a Student t-interval "
        f"(mean +- t(n-1) x standard deviation / sqrt(n); none for n = 1). {evaluated}`reward (final)`: the last "
        "step's mean reward; `wall time (s)`: training time per seed."
    )
    lines = [
        intro,
        "",
        to_markdown(with_intervals(table.drop(columns=[c for c in PAIRED_COLUMNS if c in table.columns]))),
        "",
    ]
    unfinished = [(setting, run) for setting in settings for run in setting.unfinished]
    if unfinished:
        lines += ["Seeds that did not finish:", ""]
        lines += [
            f"- {setting.label()}, seed {run.value(SEED_KEY)}: {run.status}: {run.error or NOTES[run.status]}"
            for setting, run in unfinished
        ]
        lines.append("")
    return lines


def _baseline_section(sweep: Sweep, table: pd.DataFrame, baseline: Setting) -> list[str]:
    others = table[table["pairs"].notna()]
    shown = others[[*setting_keys(sweep), *PAIRED_COLUMNS]]
    return [
        f"## Against the baseline: {baseline.command_line()}",
        "",
        (
            f"Each setting minus the baseline, paired by seed over the seeds both finished and evaluated (`pairs`): "
            f"the mean difference in held-out accuracy (`{DIFFERENCE}`) with its {CI} (a paired Student t-interval), "
            "and on how many seeds the setting was better (`wins`), equal (`ties`) or worse (`losses`)."
        ),
        "",
        to_markdown(with_intervals(shown)),
        "",
    ]


def with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Each `X`, `X low`, `X high` column triple as one `X (95% CI)` column of text: `0.412 [0.381, 0.443]`."""
    table = table.copy()
    for column in [c for c in table.columns if f"{c} low" in table.columns and f"{c} high" in table.columns]:
        signed = column != ACCURACY  # gains and differences: the sign is the point
        cells = [
            interval_cell(mean, low, high, signed)
            for mean, low, high in zip(table[column], table[f"{column} low"], table[f"{column} high"])
        ]
        table[column] = cells
        table = table.drop(columns=[f"{column} low", f"{column} high"]).rename(columns={column: f"{column} ({CI})"})
    return table


def interval_cell(mean: float, low: float, high: float, signed: bool = False) -> str:
    """`0.412 [0.381, 0.443]`; the mean alone without an interval; blank without a mean."""
    if _missing(mean):
        return ""
    number = "{:+.3f}" if signed else "{:.3f}"
    text = number.format(mean)
    return text if _missing(low) else f"{text} [{number.format(low)}, {number.format(high)}]"


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table; numbers to 4 significant digits, missing values blank."""

    def cell(value) -> str:
        if _missing(value):
            return ""
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
