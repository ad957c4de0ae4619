"""Repetition reward: the share of distinct word n-grams in a completion (distinct-n; Li et al., 2016,
arXiv:1510.03055).

Small policies trained on length or a weak signal collapse into loops ("I am happy. I am happy. I am ...");
this rule-based reward sees that without a model, which makes it the stand-in for a reward model that cannot be
loaded (see conf/reward/rm_ensemble.yaml). It does not judge helpfulness.
"""

from __future__ import annotations

from typing import Any

from grpo.config.targets import checked_by
from grpo.rewards.text import completion_text


def check_repetition_settings(n: int) -> None:
    if n < 1:
        raise ValueError(f"n={n}: must be at least 1 (words per n-gram)")


@checked_by(check_repetition_settings)
def repetition_reward(completions: list[Any], n: int = 3, **kwargs: Any) -> list[float]:
    """Score distinct n-grams / all n-grams of the lower-cased words of each completion.

    Range (0, 1]: 1.0 when no word n-gram repeats, near 0 for a loop. Texts of fewer than `n` words score 1.0
    (nothing can repeat; pair it with the length reward to discourage them). Extra TRL columns are ignored.
    """
    check_repetition_settings(n)
    return [_distinct_share(completion_text(completion).lower().split(), n) for completion in completions]


def _distinct_share(words: list[str], n: int) -> float:
    ngrams = list(zip(*(words[i:] for i in range(n))))
    return len(set(ngrams)) / len(ngrams) if ngrams else 1.0
