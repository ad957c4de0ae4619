"""Format reward: did the model put its final answer in one ``<answer>...</answer>`` block?

A rule-based format reward, as in DeepSeek-R1 (arXiv 2501.12948, section 2.2.2), teaches the output
layout that the accuracy reward relies on to find the answer.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from grpo.rewards.text import CLOSE_TAG, OPEN_TAG, completion_text


def _first_two(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    # Stop after two hits: "more than one" is all we need to know, even for a huge completion.
    return list(itertools.islice(pattern.finditer(text), 2))


def _format_score(completion: Any) -> float:
    text = completion_text(completion)
    opens, closes = _first_two(OPEN_TAG, text), _first_two(CLOSE_TAG, text)
    if len(opens) != 1 or len(closes) != 1:
        return 0.0
    start, end = opens[0].end(), closes[0].start()
    return 1.0 if start <= end and text[start:end].strip() else 0.0


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """Score 1.0 when a completion has exactly one non-empty ``<answer>...</answer>`` block, else 0.0.

    Range {0, 1}. Tags match case-insensitively; the opening tag must come before the closing one; text
    before and after the block (e.g. reasoning) is allowed. The ``reward=math`` preset weights this 0.5
    against accuracy's 1.0 (DeepSeekMath/R1-style: being correct matters more than being tidy).
    Extra TRL columns (prompts, completion_ids, trainer_state, ...) are ignored.
    """
    scores = []
    for completion in completions:
        try:
            scores.append(_format_score(completion))
        except Exception:  # never let one odd sample crash a training step
            scores.append(0.0)
    return scores
