"""The sweep report's figure: each run's mean reward by step, and its final reward and per-reward means side by side.

The per-reward means are there because the total `reward` is weighted: in a reward-weight sweep it differs between
runs by construction, while `rewards/<name>/mean` says what each run actually learned.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from grpo.sweeps.collect import FINISHED, Sweep


def run_label(values: dict[str, str | None], num: int | None) -> str:
    """`num_generations=4, format.weight=0.25`: swept keys without their group, which the column header shows."""
    parts = [f"{key.split('.', 1)[-1]}={value}" for key, value in values.items()]
    return ", ".join(parts) or f"job {num}"


def plot_sweep(sweep: Sweep, table: pd.DataFrame, path: Path) -> Path:
    """Write the comparison figure to `path` (PNG)."""
    labels = [run_label({key: run.value(key) for key in sweep.keys}, run.num) for run in sweep.runs]
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(13, 0.45 * len(labels) + 4), width_ratios=[3, 2])

    for run, label in zip(sweep.runs, labels):
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
    ticks = [label if run.status == FINISHED else f"{label} ({run.status})" for run, label in zip(sweep.runs, labels)]
    bars.set_yticks(range(len(labels)), ticks, fontsize="small")
    for tick, run in zip(bars.get_yticklabels(), sweep.runs):
        if run.status != FINISHED:
            tick.set_color("tab:red")
    bars.invert_yaxis()  # job 0 on top, as in the table
    bars.set(title="final step: total and each reward's mean", xlabel="mean over the step's completions")
    bars.grid(axis="x", alpha=0.3)
    bars.legend(fontsize="small", ncols=min(len(columns), 4), loc="upper center", bbox_to_anchor=(0.5, -0.12))

    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
