"""The sweep report's figure (report.png), in the table's row order.

One row per job: each run's mean reward by step, and its final reward and per-reward means side by side. The
per-reward means are there because the total `reward` is weighted: in a reward-weight sweep it differs between runs
by construction, while `rewards/<name>/mean` says what each run actually learned.

One row per setting (a seed sweep): each setting's reward by step averaged over its finished seeds, and its held-out
accuracy (final reward when nothing was evaluated): every seed as a dot, the mean with its 95% t-interval as a bar.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from grpo.sweeps.collect import FINISHED, Run
from grpo.sweeps.settings import Setting, interval


def run_label(values: dict[str, str | None], num: int | None) -> str:
    """`num_generations=4, format.weight=0.25`: swept keys without their group, which the column header shows."""
    parts = [f"{key.split('.', 1)[-1]}={value}" for key, value in values.items()]
    return ", ".join(parts) or f"job {num}"


def plot_jobs(runs: list[Run], keys: list[str], table: pd.DataFrame, path: Path) -> Path:
    """Write the one-row-per-job figure to `path` (PNG); `runs` in `table`'s row order."""
    labels = [run_label({key: run.value(key) for key in keys}, run.num) for run in runs]
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(13, 0.45 * len(labels) + 4), width_ratios=[3, 2])

    for run, label in zip(runs, labels):
        if "reward" in run.history.columns:
            reward = run.history["reward"].dropna()
            curves.plot(reward.index, reward.values, marker="." if len(reward) < 50 else None, label=label)
    curves.set(title="mean reward per step", xlabel="step", ylabel="reward (weighted total)")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.grid(alpha=0.3)
    if curves.lines:
        curves.legend(fontsize="small")

    columns = ["reward (final)"] + [c for c in table.columns if c.startswith("rewards/") and c.endswith("(final)")]
    height = 0.8 / len(columns)
    for index, column in enumerate(columns):
        name = "reward (weighted)" if column == "reward (final)" else column.split("/")[1]
        offsets = [p - 0.4 + height * (index + 0.5) for p in range(len(labels))]
        bars.barh(offsets, table[column].astype(float).fillna(0), height=height, label=name)
    # A failed run's bars show its last logged step; its label says it did not finish.
    ticks = [label if run.status == FINISHED else f"{label} ({run.status})" for run, label in zip(runs, labels)]
    bars.set_yticks(range(len(labels)), ticks, fontsize="small")
    for tick, run in zip(bars.get_yticklabels(), runs):
        if run.status != FINISHED:
            tick.set_color("tab:red")
    bars.invert_yaxis()  # the table's first row on top
    bars.set(title="final step: total and each reward's mean", xlabel="mean over the step's completions")
    bars.grid(axis="x", alpha=0.3)
    bars.legend(fontsize="small", ncols=min(len(columns), 4), loc="upper center", bbox_to_anchor=(0.5, -0.12))

    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_settings(settings: list[Setting], evaluated: bool, path: Path) -> Path:
    """Write the one-row-per-setting figure to `path` (PNG); `settings` in the table's row order."""
    labels = [setting.label() for setting in settings]
    figure, (curves, points) = plt.subplots(1, 2, figsize=(13, 0.45 * len(labels) + 4), width_ratios=[3, 2])

    for setting, label in zip(settings, labels):
        rewards = [run.history["reward"] for run in setting.finished if "reward" in run.history.columns]
        if rewards:
            mean = pd.concat(rewards, axis=1).mean(axis=1).dropna()
            curves.plot(mean.index, mean.values, label=f"{label} ({len(rewards)} seeds)")
    curves.set(title="mean reward per step, averaged over seeds", xlabel="step", ylabel="reward (weighted total)")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.grid(alpha=0.3)
    if curves.lines:
        curves.legend(fontsize="small")

    for row, setting in enumerate(settings):
        values = _per_seed(setting, evaluated)
        points.scatter(values, [row] * len(values), color="tab:gray", alpha=0.5, s=18, zorder=2)
        mean, low, high = interval(values)
        if values:
            error = None if math.isnan(low) else [[mean - low], [high - mean]]  # a single seed has no interval
            points.errorbar([mean], [row], xerr=error, fmt="o", color="tab:blue", capsize=4, zorder=3)
    points.set_yticks(range(len(labels)), labels, fontsize="small")
    points.set_ylim(len(labels) - 0.5, -0.5)  # the table's first row on top
    metric = "held-out accuracy (trained)" if evaluated else "final reward"
    points.set(title=f"{metric}\nmean with its 95% CI, and each seed (gray)", xlabel=metric)
    points.grid(axis="x", alpha=0.3)

    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _per_seed(setting: Setting, evaluated: bool) -> list[float]:
    if evaluated:
        return [run.evaluation.trained for run in setting.finished if run.evaluation is not None]
    rewards = [run.history["reward"].dropna() for run in setting.finished if "reward" in run.history.columns]
    return [float(reward.iloc[-1]) for reward in rewards if len(reward)]
