"""The sweep report's tables: one row per job, or, when `seed` is swept, one row per setting over its seeds.

"final" is the value at the last logged step and "best" the highest over all logged steps, of `reward`, the
weighted sum of the rewards that GRPO maximises (each completion's, averaged over the step's batch). The held-out
columns come from each run's comparison.json: `eval accuracy` is the trained model's, `eval gain` the trained minus
the base model's on the same problems, `fixed` and `broken` the problems training turned right and wrong. A setting's
row gives means over its finished seeds, with the 95% Student t-interval (`low`, `high`) of accuracy and gain.
"""

from __future__ import annotations

import statistics

import pandas as pd

from grpo.errors import ConfigError
from grpo.sweeps.baseline import paired_difference
from grpo.sweeps.collect import FAILED, NOT_STARTED, Run, Sweep
from grpo.sweeps.settings import Setting, group_settings, interval, setting_keys, setting_of

NOTES = {
    FAILED: "no final/ model: crashed, killed or still running",
    NOT_STARTED: "no run dir: the job never started",
}
ACCURACY, GAIN = "eval accuracy", "eval gain"
COUNTS = ("job", "steps", "n", "failed", "fixed", "broken", "pairs", "wins", "ties", "losses")
RANKS = {"accuracy": ACCURACY, "gain": GAIN, "reward": "reward (final)", "job": None}  # --rank: the column, best first


def report_table(sweep: Sweep, baseline: Setting | None = None) -> pd.DataFrame:
    """One row per run; reward columns for every reward any run logged, held-out columns if any run was evaluated,
    and with a `baseline`, each run's setting against it (PAIRED_COLUMNS)."""
    columns = [column for run in sweep.runs for column in run.history.columns]
    reward_means = list(dict.fromkeys(c for c in columns if c.startswith("rewards/") and c.endswith("/mean")))
    evaluated = any(run.evaluation is not None for run in sweep.runs)
    paired = _paired_by_setting(group_settings(sweep), baseline) if baseline else {}
    keys = setting_keys(sweep)
    rows = [
        {**_row(run, sweep, reward_means, evaluated), **paired.get(setting_of(run, keys), {})} for run in sweep.runs
    ]
    return _typed(pd.DataFrame(rows), sweep.keys)


def settings_table(sweep: Sweep, settings: list[Setting], baseline: Setting | None = None) -> pd.DataFrame:
    """One row per setting: finished (n) and unfinished seeds, held-out accuracy and gain with their t-intervals,
    fixed and broken summed over seeds, mean final reward and wall time; with a `baseline`, PAIRED_COLUMNS."""
    evaluated = any(run.evaluation is not None for setting in settings for run in setting.runs)
    paired = _paired_by_setting(settings, baseline) if baseline else {}
    rows = [{**_setting_row(setting, evaluated), **paired.get(setting.key, {})} for setting in settings]
    return _typed(pd.DataFrame(rows), setting_keys(sweep))


def rank_rows(table: pd.DataFrame, rank: str | None) -> pd.DataFrame:
    """The rows best first by `rank` (a RANKS key; missing values last, ties in launch order). None: by held-out
    accuracy when a run was evaluated, else by final reward. The index keeps each row's launch position."""
    column = RANKS[rank] if rank else (ACCURACY if ACCURACY in table.columns else "reward (final)")
    if column is None:
        return table
    if column not in table.columns:
        raise ConfigError(f"--rank {rank}: no run was evaluated (no comparison.json); train with "
                          "eval.after_training=true, or rank by reward")  # fmt: skip
    return table.sort_values(column, ascending=False, na_position="last", kind="stable")


def _row(run: Run, sweep: Sweep, reward_means: list[str], evaluated: bool) -> dict:
    history = run.history
    reward = _column(history, "reward")
    row = {"job": run.num, **{key: run.value(key) for key in sweep.keys}, "status": run.status}
    row["steps"] = int(reward.index[-1]) if len(reward) else None
    row["reward (final)"] = _final(run, "reward")
    row["reward (best)"] = float(reward.max()) if len(reward) else None
    for name in reward_means:
        row[f"{name} (final)"] = _final(run, name)
    if evaluated:
        evaluation = run.evaluation
        row[ACCURACY] = evaluation.trained if evaluation else None
        row[GAIN] = evaluation.gain if evaluation else None
        row["fixed"] = evaluation.fixed if evaluation else None
        row["broken"] = evaluation.broken if evaluation else None
    row["wall time (s)"] = _final(run, "train_runtime")
    row["steps/s"] = row["steps"] / row["wall time (s)"] if row["steps"] and row["wall time (s)"] else None
    row["note"] = run.error or NOTES.get(run.status, "")
    row["dir"] = str(run.dir.relative_to(sweep.dir)) if run.dir is not None else ""
    return row


def _setting_row(setting: Setting, evaluated: bool) -> dict:
    finished = setting.finished
    # A job that never started (a sweep cut short) is not a failure: the text under the table lists it as such.
    row = {**setting.values, "n": len(finished), "failed": sum(run.status == FAILED for run in setting.runs)}
    if evaluated:
        evaluations = [run.evaluation for run in finished if run.evaluation is not None]
        for column, values in ((ACCURACY, [e.trained for e in evaluations]), (GAIN, [e.gain for e in evaluations])):
            row[column], row[f"{column} low"], row[f"{column} high"] = interval(values)
        row["fixed"] = sum(e.fixed for e in evaluations) if evaluations else None
        row["broken"] = sum(e.broken for e in evaluations) if evaluations else None
    row["reward (final)"] = _mean([_final(run, "reward") for run in finished])
    row["wall time (s)"] = _mean([_final(run, "train_runtime") for run in finished])
    return row


def _paired_by_setting(settings: list[Setting], baseline: Setting) -> dict[tuple, dict]:
    return {setting.key: paired_difference(setting, baseline) for setting in settings if setting.key != baseline.key}


def _final(run: Run, name: str) -> float | None:
    # train_runtime is Trainer's own timing of trainer.train(), logged once at the end (model loading excluded).
    values = _column(run.history, name)
    return float(values.iloc[-1]) if len(values) else None


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.fmean(present) if present else None


def _column(history: pd.DataFrame, name: str) -> pd.Series:
    return history[name].dropna() if name in history.columns else pd.Series(dtype=float)


def _typed(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    for key in keys:  # values as typed on the command line: numbers where they all are (Optuna's 0.37454011...)
        try:
            table[key] = pd.to_numeric(table[key])
        except (ValueError, TypeError):
            pass
    for column in COUNTS:  # whole numbers, blank where missing (pandas would make them floats)
        if column in table.columns:
            table[column] = table[column].astype("Int64")
    return table
