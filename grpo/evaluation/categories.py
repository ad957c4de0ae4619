"""Kinds of problem, read from the question, so the report can say where training helped and where it hurt.

Derived at evaluation time rather than stored as a dataset column: the training rows stay exactly as they are.
"""

from __future__ import annotations

import re
import string

from grpo.data.arithmetic import evaluate

# The arithmetic task's questions, as grpo.data.arithmetic.load_arithmetic writes them: "What is 7 + 5 * 3?".
ARITHMETIC_QUESTION = re.compile(r"What is ([0-9]+(?: [-+*] [0-9]+)+)\?")


def arithmetic_category(question: str) -> str | None:
    """The arithmetic task's kind of problem: its expression with letters for the operands, and "< 0" when the
    result is negative ("What is 3 - 7?" -> "a - b < 0", "What is 2 + 3 * 4?" -> "a + b * c"): a negative answer
    has a sign to get right as well. None for a question that is not the arithmetic task's."""
    match = ARITHMETIC_QUESTION.fullmatch(question)
    if match is None:
        return None
    tokens = match[1].split()
    shape = " ".join(token if i % 2 else string.ascii_lowercase[i // 2 % 26] for i, token in enumerate(tokens))
    return f"{shape} < 0" if evaluate(match[1]) < 0 else shape


def categories_of(questions: list[str]) -> list[str] | None:
    """Each question's category, when every question has one (the arithmetic task); otherwise None."""
    found = [arithmetic_category(question) for question in questions]
    return None if None in found else found
