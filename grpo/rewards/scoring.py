"""Scoring completions outside the trainer as TRL's GRPOTrainer scores them (evaluation, the pre-flight check,
held-out accuracy during training, the verifier's labels)."""

from __future__ import annotations

from collections.abc import Sequence

from grpo.rewards.reward import Reward


def score_completions(
    rewards: dict[str, Reward], rows, texts: Sequence[str], token_ids: Sequence[list[int]]
) -> dict[str, list[float | None]]:
    """Each reward's values for completions of `rows` (a datasets.Dataset with `prompt`, one row per completion).

    Reward functions get what GRPOTrainer gives them: `prompts`, `completions` (assistant messages, since prompts
    are chats), `completion_ids` and every dataset column other than `prompt` (`answer`, ...).
    """
    # Plain lists, as TRL passes them: datasets 5 returns a lazy Column, which rewards would take for one scalar.
    columns = {name: list(rows[name]) for name in rows.column_names if name != "prompt"}
    messages = [[{"role": "assistant", "content": text}] for text in texts]
    return {
        name: reward(prompts=list(rows["prompt"]), completions=messages, completion_ids=list(token_ids), **columns)
        for name, reward in rewards.items()
    }


def weighted_total(rewards: dict[str, Reward], values: dict[str, float | None]) -> float:
    """TRL's total: the weighted sum, where a reward that returned None (not applicable) counts as nothing."""
    return sum(reward.weight * (values[name] or 0.0) for name, reward in rewards.items())


def weighted_totals(rewards: dict[str, Reward], values: dict[str, list[float | None]]) -> list[float]:
    """`weighted_total` of every completion, from `score_completions`' values."""
    count = len(next(iter(values.values()), []))
    return [weighted_total(rewards, {name: values[name][i] for name in rewards}) for i in range(count)]
