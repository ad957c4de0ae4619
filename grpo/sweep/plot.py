"""The sweep report's figure: each run's mean reward by step, and its final and best mean reward side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from grpo.sweep.collect import FINISHED, Sweep  # noqa: E402


def run_label(values: dict[str, str | None], num: int | None) -> str:
    """`num_generations=4, format.weight=0.25`: swept keys without their group, which the column header shows."""
    parts = [f"{key.split('.', 1)[-1]}={value}" for key, value in values.items()]
    return ", ".join(parts) or f"job {num}"


def plot_sweep(sweep: Sweep, table: pd.DataFrame, path: Path) -> Path:
    """Write the comparison figure to `path` (PNG)."""
    labels = [run_label({key: run.value(key) for key in sweep.keys}, run.num) for run in sweep.runs]
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(13, 0.35 * len(labels) + 4), width_ratios=[3, 2])

    for run, label in zip(sweep.runs, labels):
        if "reward" in run.history.columns:
            reward = run.history["reward"].dropna()
            curves.plot(reward.index, reward.values, marker="." if len(reward) < 50 else None, label=label)
    curves.set(title="mean reward per step", xlabel="step", ylabel="reward")
    curves.grid(alpha=0.3)
    if curves.lines:
        curves.legend(fontsize="small")

    positions = range(len(labels))
    final, best = table["reward (final)"].astype(float), table["reward (best)"].astype(float)
    bars.barh([p + 0.2 for p in positions], best.fillna(0), height=0.4, label="best", color="tab:green", alpha=0.5)
    bars.barh([p - 0.2 for p in positions], final.fillna(0), height=0.4, label="final", color="tab:blue")
    for position, run in zip(positions, sweep.runs):
        if run.status != FINISHED:  # a failed run's bars stop where it did; say so next to them
            bars.text(0, position, f"  {run.status}", va="center", color="tab:red", fontweight="bold")
    bars.set_yticks(list(positions), labels, fontsize="small")
    bars.invert_yaxis()  # job 0 on top, as in the table
    bars.set(title="final and best mean reward", xlabel="reward")
    bars.grid(axis="x", alpha=0.3)
    bars.legend(fontsize="small")

    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
