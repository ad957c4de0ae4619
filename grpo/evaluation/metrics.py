"""Scoring completions with the training rewards, and what changed between the base and the trained model.

Accuracy is the mean of the `accuracy` reward and format rate the mean of the `format` reward: the very functions
(and weights, for the total) that training optimised, so the numbers mean what `rewards/<name>/mean` meant there.
With several samples per problem (`eval.samples`) the means run over every sample (accuracy is then pass@1), and a
problem counts as solved when its majority answer is right (maj@K). How far the change can be trusted comes from
grpo.evaluation.stats: McNemar's exact test on the problems that changed, and a bootstrap interval over problems.
"""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset

from grpo.evaluation.categories import categories_of
from grpo.evaluation.generate import Completion
from grpo.evaluation.stats import bootstrap_ci, majority_vote, mcnemar_exact, pass_at_k
from grpo.rewards.math import parse_number
from grpo.rewards.reward import Reward
from grpo.rewards.scoring import score_completions, weighted_total
from grpo.rewards.text import extract_answer

MODELS = ("base", "trained")
ACCURACY, FORMAT = "accuracy", "format"  # the reward entries behind the headline metrics
# Per-problem outcome of training, from whether each model's answer was correct (accuracy reward 1).
OUTCOMES = {(False, True): "fixed", (True, False): "broken", (True, True): "both correct", (False, False): "both wrong"}
CI_LEVEL, RESAMPLES = 0.95, 10_000  # the bootstrap interval of the accuracy change

Rewards = dict[str, Reward]


def score(rows: Dataset, completions: Sequence[Completion], rewards: Rewards) -> list[dict]:
    """Per completion: its text, token length, each reward's value and the weighted total, as TRL computes them."""
    texts, token_ids = [c.text for c in completions], [c.token_ids for c in completions]
    values = score_completions(rewards, rows, texts, token_ids)
    scored = []
    for i, completion in enumerate(completions):
        per_reward = {name: _number(values[name][i]) for name in rewards}
        scored.append({
            "completion": completion.text,
            "length": len(completion.token_ids),
            "rewards": per_reward,
            "reward": weighted_total(rewards, per_reward),
            "correct": per_reward[ACCURACY] == 1.0,
        })
    return scored


def problem_records(rows: Dataset, base: list[dict], trained: list[dict], samples: int = 1) -> list[dict]:
    """One record per problem: the question, the gold answer, both models' scored completions and the outcome.

    With `samples` completions per problem (`base` and `trained` then hold each problem's samples one after another),
    a record shows each model's majority-vote completion (`voted`), keeps every sample under `samples`, and its
    outcome is the majority answer's. Where the questions have categories (the arithmetic task) it has a `category`.
    """
    questions = [prompt[-1]["content"] for prompt in list(rows["prompt"])]
    categories = categories_of(questions)
    records = []
    for index, (question, answer) in enumerate(zip(questions, list(rows["answer"]))):
        span = slice(index * samples, (index + 1) * samples)
        sampled = {"base": base[span], "trained": trained[span]}
        shown = {model: voted(sampled[model]) for model in MODELS}
        record = {
            "index": index,
            "question": question,
            "answer": answer,
            "outcome": OUTCOMES[(shown["base"]["correct"], shown["trained"]["correct"])],
            **shown,
        }
        if categories is not None:
            record["category"] = categories[index]
        if samples > 1:
            record["samples"] = sampled
        records.append(record)
    return records


def voted(samples: list[dict]) -> dict:
    """The completion that stands for a problem: the only one, or among several, one that gives the most common answer
    (maj@K; ties go to the answer given first), and a correct one where any with that answer is, so the problem counts
    as solved exactly when the majority answer was scored right. With no answer among them, the first sample."""
    if len(samples) == 1:
        return samples[0]
    keys = [answer_key(sample["completion"]) for sample in samples]
    winner = majority_vote(keys)
    if winner is None:
        return samples[0]
    agreeing = [sample for sample, key in zip(samples, keys) if key == winner]
    return next((sample for sample in agreeing if sample["correct"]), agreeing[0])


def answer_key(text: str) -> object:
    """What a completion votes for: the number in its answer block as the accuracy reward reads it (so "18.0" and
    "18" agree), else the block's text; None without an answer block."""
    answer = extract_answer(text)
    if answer is None:
        return None
    number = parse_number(answer)
    return answer if number is None else number


def drawn(record: dict, model: str) -> list[dict]:
    """Every scored completion of `model` for the problem of `record`: its samples, or the one completion."""
    return record["samples"][model] if "samples" in record else [record[model]]


def summarize(records: Sequence[dict], model: str) -> dict:
    """One model's metrics over the problems: accuracy and format rate in [0, 1], means of every reward and length
    (over every sample, where there are several), the problems it solved, and with several samples pass@k and maj@K."""
    results = [result for record in records for result in drawn(record, model)]
    reward_names = results[0]["rewards"] if results else {}
    summary = {
        "n": len(records),
        "accuracy": mean([result["rewards"][ACCURACY] for result in results]),
        "format_rate": mean([result["rewards"][FORMAT] for result in results]),
        "correct": sum(record[model]["correct"] for record in records),
        "mean_length": mean([result["length"] for result in results]),
        "reward": mean([result["reward"] for result in results]),
        "rewards": {name: mean([result["rewards"][name] for result in results]) for name in reward_names},
    }
    samples = samples_per_problem(records)
    if samples > 1:
        solved = [sum(result["correct"] for result in drawn(record, model)) for record in records]
        summary["pass_at_k"] = {str(k): mean([pass_at_k(samples, c, k) for c in solved]) for k in pass_ks(samples)}
        summary["maj_at_k"] = summary["correct"] / len(records)
    return summary


def samples_per_problem(records: Sequence[dict]) -> int:
    return len(drawn(records[0], MODELS[0])) if records else 1


def pass_ks(samples: int) -> list[int]:
    """The k of pass@k reported for `samples` per problem: 1, 2, 4, ... below it, and `samples` itself."""
    return [2**power for power in range(samples.bit_length()) if 2**power < samples] + [samples]


def compare(records: Sequence[dict]) -> dict:
    """Both models' metrics, the problems training fixed (base wrong, trained right) and broke (the reverse), and how
    far the change can be trusted (`statistics`)."""
    comparison = {model: summarize(records, model) for model in MODELS}
    for outcome in ("fixed", "broken"):
        comparison[outcome] = [record["index"] for record in records if record["outcome"] == outcome]
    comparison["outcomes"] = {outcome: sum(r["outcome"] == outcome for r in records) for outcome in OUTCOMES.values()}
    return comparison | statistics(records, comparison["outcomes"])


def statistics(records: Sequence[dict], outcomes: dict[str, int]) -> dict:
    """Samples per problem; McNemar's exact p for fixed against broken; the bootstrap interval of the accuracy change,
    resampling problems in pairs (seed 0, so a report is reproducible); and the same comparison per category."""
    shares = {model: [share_correct(record, model) for record in records] for model in MODELS}
    low, high = bootstrap_ci(shares["base"], shares["trained"], CI_LEVEL, RESAMPLES, seed=0)
    return {
        "samples": samples_per_problem(records),
        "mcnemar_p": mcnemar_exact(outcomes["fixed"], outcomes["broken"]),
        "accuracy_change_ci": [low, high],
        "categories": by_category(records),
    }


def share_correct(record: dict, model: str) -> float:
    """The share of `model`'s completions of this problem that are correct: 0 or 1 with one sample."""
    results = drawn(record, model)
    return sum(result["correct"] for result in results) / len(results)


def by_category(records: Sequence[dict]) -> dict[str, dict]:
    """Per category, by name: problems, both models' accuracy and its change, and the problems fixed and broken;
    empty where the problems have no categories."""
    names = sorted({record["category"] for record in records if "category" in record})
    table = {}
    for name in names:
        chosen = [record for record in records if record.get("category") == name]
        base, trained = (summarize(chosen, model)["accuracy"] for model in MODELS)
        table[name] = {
            "n": len(chosen),
            "base_accuracy": base,
            "trained_accuracy": trained,
            "change": None if base is None or trained is None else trained - base,
            "fixed": sum(record["outcome"] == "fixed" for record in chosen),
            "broken": sum(record["outcome"] == "broken" for record in chosen),
        }
    return table


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None (TRL's nanmean); None when there are none."""
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def _number(value) -> float | None:
    return None if value is None else float(value)
