"""Scoring completions with the training rewards, and what changed between the base and the trained model.

Accuracy is the mean of the `accuracy` reward and format rate the mean of the `format` reward: the very functions
(and weights, for the total) that training optimised, so the numbers mean what `rewards/<name>/mean` meant there.
"""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset

from grpo.evaluation.generate import Completion
from grpo.rewards.reward import Reward

MODELS = ("base", "trained")
ACCURACY, FORMAT = "accuracy", "format"  # the reward entries behind the headline metrics
# Per-problem outcome of training, from whether each model's answer was correct (accuracy reward 1).
OUTCOMES = {(False, True): "fixed", (True, False): "broken", (True, True): "both correct", (False, False): "both wrong"}

Rewards = dict[str, Reward]


def score(rows: Dataset, completions: Sequence[Completion], rewards: Rewards) -> list[dict]:
    """Per completion: its text, token length, each reward's value and the weighted total, as TRL computes them.

    Reward functions get what GRPOTrainer gives them: `prompts`, `completions` (assistant messages, since prompts
    are chats), `completion_ids` and every dataset column other than `prompt` (`answer`, ...).
    """
    # Plain lists, as TRL passes them: datasets 5 returns a lazy Column, which rewards would take for one scalar.
    columns = {name: list(rows[name]) for name in rows.column_names if name != "prompt"}
    messages = [[{"role": "assistant", "content": completion.text}] for completion in completions]
    token_ids = [completion.token_ids for completion in completions]
    values = {
        name: reward(prompts=list(rows["prompt"]), completions=messages, completion_ids=token_ids, **columns)
        for name, reward in rewards.items()
    }
    scored = []
    for i, completion in enumerate(completions):
        per_reward = {name: _number(values[name][i]) for name in rewards}
        scored.append({
            "completion": completion.text,
            "length": len(completion.token_ids),
            "rewards": per_reward,
            # TRL's total: the weighted sum, where a reward that returned None (not applicable) counts as nothing.
            "reward": sum(reward.weight * (per_reward[name] or 0.0) for name, reward in rewards.items()),
            "correct": per_reward[ACCURACY] == 1.0,
        })
    return scored


def problem_records(rows: Dataset, base: list[dict], trained: list[dict]) -> list[dict]:
    """One record per problem: the question, the gold answer, both models' scored completions and the outcome."""
    records = []
    for index, (prompt, answer) in enumerate(zip(list(rows["prompt"]), list(rows["answer"]))):
        outcome = OUTCOMES[(base[index]["correct"], trained[index]["correct"])]
        records.append({
            "index": index,
            "question": prompt[-1]["content"],
            "answer": answer,
            "outcome": outcome,
            "base": base[index],
            "trained": trained[index],
        })
    return records


def summarize(records: Sequence[dict], model: str) -> dict:
    """One model's metrics over the problems: accuracy and format rate in [0, 1], means of every reward and length."""
    results = [record[model] for record in records]
    reward_names = results[0]["rewards"] if results else {}
    return {
        "n": len(results),
        "accuracy": mean([result["rewards"][ACCURACY] for result in results]),
        "format_rate": mean([result["rewards"][FORMAT] for result in results]),
        "correct": sum(result["correct"] for result in results),
        "mean_length": mean([result["length"] for result in results]),
        "reward": mean([result["reward"] for result in results]),
        "rewards": {name: mean([result["rewards"][name] for result in results]) for name in reward_names},
    }


def compare(records: Sequence[dict]) -> dict:
    """Both models' metrics and the problems training fixed (base wrong, trained right) and broke (the reverse)."""
    comparison = {model: summarize(records, model) for model in MODELS}
    for outcome in ("fixed", "broken"):
        comparison[outcome] = [record["index"] for record in records if record["outcome"] == outcome]
    comparison["outcomes"] = {outcome: sum(r["outcome"] == outcome for r in records) for outcome in OUTCOMES.values()}
    return comparison


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None (TRL's nanmean); None when there are none."""
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def _number(value) -> float | None:
    return None if value is None else float(value)
