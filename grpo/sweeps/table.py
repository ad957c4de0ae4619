"""The sweep report's table: one row per job, its swept values, status and summary metrics.

"final" is the value at the last logged step and "best" the highest over all logged steps, of `reward`, the
weighted sum of the rewards that GRPO maximises (each completion's, averaged over the step's batch).
"""

from __future__ import annotations

import math

import pandas as pd

from grpo.sweeps.collect import FAILED, NOT_STARTED, Run, Sweep

NOTES = {
    FAILED: "no final/ model: crashed, killed or still running",
    NOT_STARTED: "no run dir: the job never started",
}


def report_table(sweep: Sweep) -> pd.DataFrame:
    """One row per run; reward columns for every reward any run logged, `eval accuracy` if any run was evaluated."""
    columns = [column for run in sweep.runs for column in run.history.columns]
    reward_means = list(dict.fromkeys(c for c in columns if c.startswith("rewards/") and c.endswith("/mean")))
    evaluated = any(run.eval_accuracy is not None for run in sweep.runs)
    rows = [_row(run, sweep, reward_means, evaluated) for run in sweep.runs]
    table = pd.DataFrame(rows)
    table["job"] = table["job"].astype("Int64")
    table["steps"] = table["steps"].astype("Int64")
    for key in sweep.keys:  # values as typed on the command line: numbers where they all are (Optuna's 0.37454011...)
        try:
            table[key] = pd.to_numeric(table[key])
        except (ValueError, TypeError):
            pass
    return table


def _row(run: Run, sweep: Sweep, reward_means: list[str], evaluated: bool) -> dict:
    history = run.history
    reward = _column(history, "reward")
    runtime = _column(history, "train_runtime")
    row = {"job": run.num, **{key: run.value(key) for key in sweep.keys}, "status": run.status}
    row["steps"] = int(reward.index[-1]) if len(reward) else None
    row["reward (final)"] = float(reward.iloc[-1]) if len(reward) else None
    row["reward (best)"] = float(reward.max()) if len(reward) else None
    for name in reward_means:
        values = _column(history, name)
        row[f"{name} (final)"] = float(values.iloc[-1]) if len(values) else None
    if evaluated:
        row["eval accuracy"] = run.eval_accuracy
    # train_runtime is Trainer's own timing of trainer.train(), logged once at the end (model loading excluded).
    row["wall time (s)"] = float(runtime.iloc[-1]) if len(runtime) else None
    row["steps/s"] = row["steps"] / row["wall time (s)"] if row["steps"] and row["wall time (s)"] else None
    row["note"] = run.error or NOTES.get(run.status, "")
    row["dir"] = str(run.dir.relative_to(sweep.dir)) if run.dir is not None else ""
    return row


def _column(history: pd.DataFrame, name: str) -> pd.Series:
    return history[name].dropna() if name in history.columns else pd.Series(dtype=float)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table; numbers to 4 significant digits, missing values blank."""
    def cell(value) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
