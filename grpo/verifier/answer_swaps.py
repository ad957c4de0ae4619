"""Counterfactual answers for training a verifier: the policy's own text with its final number swapped.

A verifier learns only from problems whose sampled answers earn different rewards. A problem the policy always gets
right, or always wrong, gives no pair, and there a verifier trained on sampled pairs alone rewarded whatever the
policy usually writes (docs/verifier.md). Swapping the final number mends both: a wrong
answer with the gold number written in becomes a right one, a right answer with a near miss written in a wrong one.
Such a pair differs only in the number, so it can be ranked by checking the answer and by nothing else (not length,
tags or style).

    "13 * 5 = 70.\\n<answer>70</answer>"  ->  "13 * 5 = 65.\\n<answer>65</answer>"     (gold 65)

The swapped text is labelled by the same rule-based rewards as every sampled answer, never assumed right or wrong.
"""

from __future__ import annotations

import random
import re

_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
# The last answer block holding one plain number, and its closing tag; case as the rewards read it.
_LAST_BLOCK = re.compile(rf"<answer>\s*({_NUMBER})\s*</answer>(?!.*</answer>)", re.IGNORECASE | re.DOTALL)
NEAR_MISS = (1, 10)  # a right answer's number moves by 1 to 10, either way: the errors the policy makes


def swap_answer(text: str, new: str) -> str | None:
    """`text` with the number in its last `<answer>` block, and the result before the block that states the same
    number (the last "= 65"), replaced by `new`; None when the block holds no plain number."""
    block = _LAST_BLOCK.search(text)
    if block is None:
        return None
    old = block.group(1)
    head = text[: block.start()]
    # Only a result ("= 65."), whole ("= 65" but not "= 6.5" or "= 650"): an operand that happens to equal the
    # answer ("16 + 6 = 22. <answer>6</answer>") stays as the policy wrote it.
    results = list(re.finditer(rf"=\s*({re.escape(old)})(?![0-9]|\.[0-9])", head))
    if results:
        last = results[-1]
        head = head[: last.start(1)] + new + head[last.end(1) :]
    return head + text[block.start() : block.start(1)] + new + text[block.end(1) :]


def swap_target(answer: str, gold: str, rng: random.Random) -> str | None:
    """The number to write in place of `answer`'s: the gold one for a wrong answer, a near miss of the gold one for a
    right answer; None for a gold answer that is not a whole number (no near miss to make of "2.5" here)."""
    block = _LAST_BLOCK.search(answer)
    if block is None:
        return None
    if block.group(1) != gold:
        return gold
    try:
        value = int(gold)
    except ValueError:
        return None
    return str(near_miss(value, rng))


def near_miss(gold: int, rng: random.Random, low: int = NEAR_MISS[0], high: int = NEAR_MISS[1]) -> int:
    """`gold` moved by `low` to `high`, up or down."""
    return gold + rng.choice((-1, 1)) * rng.randint(low, high)


def swaps_of(answers: list[str], gold: str, limit: int, rng: random.Random) -> list[tuple[str, str]]:
    """Up to `limit` (answer, swapped answer) couples from distinct answers to one problem (the swapped number always
    differs from the answer's: the gold one for a wrong answer, a near miss for a right one)."""
    distinct = list(dict.fromkeys(answers))
    rng.shuffle(distinct)
    couples = []
    for answer in distinct:
        target = swap_target(answer, gold, rng)
        if target is not None:  # None: no plain number in the answer block, or no near miss of the gold to make
            couples.append((answer, swap_answer(answer, target)))
        if len(couples) == limit:
            break
    return couples
