"""The number a run hands back to a Hydra sweeper: the final logged value of its `objective` metric.

Optuna's sweeper (conf/sweep/optuna_reward_weights.yaml) maximises the float each job's task function returns.
The objective is a reward metric, checked against the configured rewards before the model loads. When sweeping
reward weights, pick a weight-free one (`rewards/accuracy/mean`): the weighted total `reward` grows with the
weights themselves, so maximising it only teaches the optimiser to raise them.
"""

from __future__ import annotations

from collections.abc import Iterable

from grpo.errors import ConfigError


def objective_metrics(reward_names: Iterable[str]) -> list[str]:
    """The metrics a run logs every step that can be an objective: the total and each reward's mean and std."""
    names = list(reward_names)
    return ["reward", "reward_std"] + [f"rewards/{name}/{stat}" for name in names for stat in ("mean", "std")]


def check_objective(objective: str, reward_names: Iterable[str]) -> None:
    """Refuse an objective the run will not log, listing those it will."""
    metrics = objective_metrics(reward_names)
    if objective not in metrics:
        raise ConfigError(f"objective={objective} is not a metric this run logs; use one of: {', '.join(metrics)}")


def final_metric(log_history: list[dict], key: str) -> float:
    """The last value of `key` in a Trainer's `state.log_history` (one entry per logged step)."""
    values = [entry[key] for entry in log_history if key in entry]
    if not values:
        raise ValueError(f"{key} was never logged (no training step finished), so the run has no objective value")
    return float(values[-1])
