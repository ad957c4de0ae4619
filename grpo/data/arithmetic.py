"""An embedded arithmetic task: procedurally generated, seeded, verifiable, and offline.

Problems look like "What is 7 + 5 * 3?" with the exact integer answer. Difficulty comes from the operand range and
the number of operations. Each distinct problem belongs to exactly one split, decided by a hash of its text, so the
train and held-out splits never overlap whatever their sizes or seeds.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence

from datasets import Dataset

from grpo.errors import ConfigError

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
OPERATORS = ("+", "-", "*")


def load_arithmetic(
    split: str = "train",
    size: int = 500,
    seed: int = 0,
    min_operand: int = 1,
    max_operand: int = 20,
    num_operations: int = 1,
    operators: Sequence[str] = OPERATORS,
    heldout_fraction: float = 0.2,
) -> Dataset:
    """`size` distinct problems of one split as `{question, answer}` rows, the same for the same arguments
    (fewer, with a warning, when the settings allow fewer)."""
    _check(split, size, min_operand, max_operand, num_operations, operators, heldout_fraction)
    rng = random.Random(f"{seed}-{split}")
    problems: dict[str, int] = {}
    # Rejection sampling: draw problems and keep the new ones of this split. The cap stops settings whose problem
    # space is too small for `size` from looping forever.
    for _ in range(size * 200):
        if len(problems) == size:
            break
        expression = _draw(rng, min_operand, max_operand, num_operations, operators)
        if expression not in problems and split_of(expression, heldout_fraction) == split:
            problems[expression] = evaluate(expression)
    if not problems:
        raise ConfigError(
            f"dataset.split={split}: no {split} problems exist for these settings. "
            "Widen dataset.max_operand / dataset.num_operations, or change dataset.heldout_fraction."
        )
    if len(problems) < size:  # a small space (the held-out split of easy settings): use all of it, and say so
        log.warning(
            "dataset.size=%d: only %d distinct %s problems exist for these settings; using all of them "
            "(widen dataset.max_operand / dataset.num_operations for more).", size, len(problems), split,
        )
    return Dataset.from_list([{"question": f"What is {e}?", "answer": str(v)} for e, v in problems.items()])


def split_of(expression: str, heldout_fraction: float) -> str:
    """The split a problem belongs to: a stable hash of its text, so no problem is ever in both."""
    bucket = int.from_bytes(hashlib.sha256(expression.encode()).digest()[:8], "big") / 2**64
    return "test" if bucket < heldout_fraction else "train"


def evaluate(expression: str) -> int:
    """Value of `a op b op c ...` with `*` binding tighter than `+` and `-` (no eval of text)."""
    tokens = expression.split()
    terms = [int(tokens[0])]
    signs = [1]
    for op, operand in zip(tokens[1::2], tokens[2::2]):
        if op == "*":
            terms[-1] *= int(operand)
        else:
            terms.append(int(operand))
            signs.append(1 if op == "+" else -1)
    return sum(sign * term for sign, term in zip(signs, terms))


def _draw(rng: random.Random, low: int, high: int, num_operations: int, operators: Sequence[str]) -> str:
    parts = [str(rng.randint(low, high))]
    for _ in range(num_operations):
        parts += [rng.choice(operators), str(rng.randint(low, high))]
    return " ".join(parts)


def _check(split, size, min_operand, max_operand, num_operations, operators, heldout_fraction) -> None:
    if split not in SPLITS:
        raise ConfigError(f"dataset.split={split}: the arithmetic task has the splits {list(SPLITS)}.")
    if size < 1:
        raise ConfigError(f"dataset.size={size}: must be at least 1.")
    if not 0 <= min_operand <= max_operand:
        raise ConfigError(
            f"dataset.min_operand={min_operand}, dataset.max_operand={max_operand}: need 0 <= min <= max."
        )
    if num_operations < 1:
        raise ConfigError(f"dataset.num_operations={num_operations}: must be at least 1.")
    unknown = [op for op in operators if op not in OPERATORS]
    if unknown or not operators:
        raise ConfigError(f"dataset.operators={list(operators)}: choose a non-empty subset of {list(OPERATORS)}.")
    if not 0 < heldout_fraction < 1:
        raise ConfigError(f"dataset.heldout_fraction={heldout_fraction}: must be between 0 and 1 (exclusive).")
