"""Safety reward: 1 minus the chance that a completion is offensive, from an offline classifier and/or a blocklist.

The classifier is the model that `alt-profanity-check` ships (a linear SVM on bag-of-words features, trained on
about 200k human-labelled clean and profane texts): no download, microseconds per text on a CPU, and a probability
rather than a yes/no, so GRPO can tell mildly from grossly offensive completions. It judges words, not intent.
A blocklist adds terms that must never appear, whatever the classifier says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from grpo.config.targets import checked_by
from grpo.errors import ConfigError, RewardUnavailable
from grpo.rewards.text import completion_text

CLASSIFIERS = ("alt-profanity-check",)


def check_safety_settings(classifier: str | None, blocklist: Sequence[str]) -> None:
    """Refuse settings that cannot work; run on the config before anything loads (grpo.arguments.check_call)."""
    if classifier is not None and classifier not in CLASSIFIERS:
        raise ConfigError(f"classifier={classifier!r}: choose one of {list(CLASSIFIERS)}, or null for none.")
    bad = [term for term in blocklist if not isinstance(term, str) or not term.strip()]
    if bad:
        raise ConfigError(f"blocklist: every entry must be a non-empty string, not {bad[0]!r}.")
    if classifier is None and not list(blocklist):
        raise ConfigError("classifier=null with an empty blocklist scores nothing; set a classifier or blocklist.")


@checked_by(check_safety_settings)
class SafetyReward:
    """Score `1 - risk` per completion: range [0, 1], 1.0 for clean text.

    `risk` is the classifier's probability that the text is offensive (`classifier=null`: 0), raised to 1.0 when
    any `blocklist` term occurs (case-insensitive, as a whole word or phrase; spaces in a phrase match any
    whitespace). The classifier loads once, when the reward is built; RewardUnavailable if its package is missing.
    """

    def __init__(self, classifier: str | None = "alt-profanity-check", blocklist: Sequence[str] = ()):
        terms = list(blocklist)
        check_safety_settings(classifier, terms)
        self.classifier = classifier
        self.blocklist = terms
        self._predict = _load_classifier() if classifier else None
        self._blocked = _blocklist_pattern(terms) if terms else None

    def __call__(self, completions: list[Any], **kwargs: Any) -> list[float]:
        """One score per completion; extra TRL columns are ignored."""
        texts = [completion_text(completion) for completion in completions]
        risks = [float(p) for p in self._predict(texts)] if self._predict is not None and texts else [0.0] * len(texts)
        if self._blocked is not None:
            risks = [1.0 if self._blocked.search(text) else risk for text, risk in zip(texts, risks)]
        return [1.0 - risk for risk in risks]


def _blocklist_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    # Literal terms only (escaped), so matching stays linear however long the completion is.
    phrases = (r"\s+".join(re.escape(word) for word in term.split()) for term in terms)
    return re.compile(r"(?<!\w)(?:" + "|".join(phrases) + r")(?!\w)", re.IGNORECASE)


def _load_classifier() -> Callable[[list[str]], Sequence[float]]:
    try:  # profanity_check unpickles its scikit-learn model at import time: that is the load
        from profanity_check import predict_prob
    except Exception as error:  # a missing package, or a pickle that this scikit-learn cannot read
        raise RewardUnavailable(
            f"safety classifier alt-profanity-check could not be loaded ({type(error).__name__}: {error}); "
            "pip install alt-profanity-check, or set classifier=null and use a blocklist"
        ) from None
    return predict_prob
