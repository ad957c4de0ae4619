"""Accuracy reward for numeric answers (GSM8K-style) and the careful number parser behind it.

The model's answer is the last number inside its last ``<answer>`` block, compared exactly (as
``Fraction``) with the gold number. Everything the model writes is untrusted: parsing is linear-time and
capped, nothing is ever evaluated, and any surprise scores 0.0 instead of raising.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from grpo.rewards.text import MAX_ANSWER_CHARS, clip_tail, completion_text, extract_answer

# Caps checked before any int/Fraction is built, so "1e999999" or a 100k-digit string costs nothing.
MAX_DIGITS = 100
MAX_EXPONENT = 100
_INT_LIMIT = 10**MAX_DIGITS

# Unicode minus and dashes that models and LaTeX renderers emit in place of "-".
_DASHES = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-", "\uff0d": "-"})

# ASCII digits only: "\d" would also accept e.g. Arabic-Indic digits, which we do not grade.
_UNSIGNED = (
    r"(?:(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
# One value: optional sign (and currency sign after it: "-$5"), a number, optionally "/ number".
# No two repeats of one character class are ever adjacent (e.g. "\s*-?\s*"): that would make a long
# run of spaces quadratic. Every "\s*" is followed by a required, disjoint character.
_VALUE = re.compile(
    rf"(?:(?P<sign>[+-])\s*(?:[$€£]\s*)?)?(?P<num>{_UNSIGNED})"
    rf"(?:\s*/\s*(?:(?P<den_sign>[+-])\s*)?(?P<den>{_UNSIGNED}))?"
)

_SIMPLE = r"((?:-\s*)?[0-9.,]+)"
_FRAC = re.compile(rf"\\[dt]?frac\s*\{{\s*{_SIMPLE}\s*\}}\s*\{{\s*{_SIMPLE}\s*\}}")
_FRAC_SHORT = re.compile(r"\\[dt]?frac\s*([0-9])\s*([0-9])")  # \frac34
_SPACING = re.compile(r"\\[,;:! ]")  # thin spaces, also used as thousands separators: 1\,234
_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|textrm|texttt|mathrm|mathbf|mathit|mbox|displaystyle|textstyle"
    r"|left|right|quad|qquad)(?![a-zA-Z])"
)
_ESCAPES = re.compile(r"\\+(?![a-zA-Z])")  # \$ \% \( \) \[ \] \{ \} and \\ line breaks
_COMMAND = re.compile(r"\\([a-zA-Z]+)")

# Context around the final number that means it is part of an expression, not the answer:
# "9**9**9", "2^10", "5!", "1 + 3", "x/4" are not a plain number and score 0 rather than a guess.
# Sets of single characters, so the "" returned at either end of the text is never a member.
_OPERATORS = frozenset("*/^×·÷+-")
_AFTER_OPERATORS = frozenset("*/^×·÷!²³¹⁰⁴⁵⁶⁷⁸⁹")
_BEFORE_SIGN = frozenset(")]}.%")  # "5 - 3", "(5) - 3": the sign is a binary minus
_CLOSERS = frozenset(")]}")
_OPENERS = frozenset("([{")

# The math-verify fallback only sees short LaTeX built from these commands: no powers, factorials,
# sums or exponentials, so sympy can never be asked to build an astronomically large number.
MAX_LATEX_CHARS = 500
_LATEX_ALLOWED = frozenset(
    "frac dfrac tfrac sqrt cdot times div left right text textbf mathrm mbox boxed displaystyle".split()
)


def _to_fraction(number: str) -> Fraction | None:
    mantissa, _, exponent = number.replace(",", "").lower().partition("e")
    if sum(c.isdigit() for c in mantissa) > MAX_DIGITS:
        return None
    if exponent and (len(exponent) > 5 or abs(int(exponent)) > MAX_EXPONENT):
        return None
    return Fraction(mantissa) * Fraction(10) ** int(exponent or 0)


def _last_boxed(text: str) -> str:
    # \boxed{...} is the answer when present; its braces may nest (\boxed{\frac{3}{4}}).
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return text
    brace = text.find("{", start)
    if brace < 0 or not text[start + 1 : brace].strip().isalpha():
        return text  # leaves the command in place, so the text counts as unsupported LaTeX
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i]
    return text[brace + 1 :]


def _normalize(text: str) -> str:
    text = _last_boxed(text.translate(_DASHES)).replace("{,}", ",")
    text = _SPACING.sub("", text)
    # Spaces around a/b keep "3\frac{1}{2}" a mixed number instead of "31/2".
    text = _FRAC.sub(r" \1/\2 ", text)
    text = _FRAC_SHORT.sub(r" \1/\2 ", text)
    text = _WRAPPERS.sub(" ", text)
    return _ESCAPES.sub("", text)


def _char_before(text: str, i: int, skip: frozenset[str]) -> tuple[str, int]:
    i -= 1
    while i >= 0 and (text[i].isspace() or text[i] in skip):
        i -= 1
    return (text[i], i) if i >= 0 else ("", -1)


def _char_after(text: str, i: int) -> str:
    while i < len(text) and (text[i].isspace() or text[i] in _CLOSERS):
        i += 1
    return text[i] if i < len(text) else ""


def _value(match: re.Match[str]) -> Fraction | None:
    value = _to_fraction(match["num"])
    if value is not None and match["den"] is not None:
        den = _to_fraction(match["den"])
        if den is None or den == 0:
            return None
        value = value / den * (-1 if match["den_sign"] == "-" else 1)
    if value is not None and match["sign"] == "-":
        value = -value
    return value


def _last_number(text: str) -> Fraction | None:
    tail = deque(_VALUE.finditer(text), maxlen=2)
    if not tail:
        return None
    last = tail.pop()
    value = _value(last)
    if value is None or _char_after(text, last.end()) in _AFTER_OPERATORS:
        return None
    before, at = _char_before(text, last.start(), frozenset())
    if before.isdigit() and last["den"] and not last["sign"] and tail and tail[-1].end() == at + 1:
        # Mixed number "3 1/2": the integer part takes the sign of the whole.
        whole = tail.pop()
        whole_value = _value(whole)
        if whole_value is None or whole["den"] or not whole["num"].isdigit():
            return None
        value = whole_value + (-value if whole["sign"] == "-" else value)
        last = whole
    before, _ = _char_before(text, last.start(), _OPENERS)
    # A digit right before the number is ambiguous ("2 3", "1 234"); a digit or closing bracket
    # before a sign makes it a binary minus ("5 - 3").
    if before.isdigit() or before in _OPERATORS or (last["sign"] and before in _BEFORE_SIGN):
        return None
    return value


def _parse(text: Any) -> tuple[Fraction | None, bool]:
    """Return (value, unsupported_latex): the second is True when LaTeX we do not grade remained."""
    if isinstance(text, bool) or text is None:
        return None, False
    if isinstance(text, Fraction):
        return text, False
    if isinstance(text, int):
        return (Fraction(text) if abs(text) < _INT_LIMIT else None), False
    if isinstance(text, float):
        return (_parse(repr(text))[0] if math.isfinite(text) else None), False
    if not isinstance(text, str):
        return None, False
    normalized = _normalize(clip_tail(text, MAX_ANSWER_CHARS))
    if _COMMAND.search(normalized):
        return None, True
    return _last_number(normalized), False


def parse_number(text: str | int | float) -> Fraction | None:
    """Parse the final answer number of ``text`` exactly, or return None. Never raises.

    Takes the last number ("... so the answer is 42" -> 42; "x = 7" -> 7), where "a/b", ``\\frac{a}{b}``
    and mixed numbers "3 1/2" count as one number. Understands thousands commas ("1,234"), currency
    signs, units and words around the number, "50%" (-> 50, as GSM8K golds are the number before "%"),
    negatives (also with a unicode minus), decimals (".5", "18.00"), "1e3", ``\\boxed{...}`` (the last
    box wins) and wrappers such as ``$...$``, ``\\(...\\)``, ``\\text{...}``. Returns None for numbers
    over ``MAX_DIGITS`` digits or ``|exponent| > MAX_EXPONENT``, non-finite floats, non-ASCII digits,
    a last number that is part of an expression ("2^10", "9**9**9", "1 + 3", "5!"), and LaTeX it
    does not understand (``\\sqrt{16}``; the accuracy reward hands that to math-verify).
    """
    try:
        return _parse(text)[0]
    except Exception:  # a parser bug must cost one sample, not a training step
        return None


def _latex_equal(latex: str, gold: Fraction) -> bool:
    """math-verify as a fallback for LaTeX our parser leaves alone, only for safe, short input."""
    if len(latex) > MAX_LATEX_CHARS or any(c in latex for c in "^!*"):
        return False
    if not set(_COMMAND.findall(latex)) <= _LATEX_ALLOWED:
        return False
    try:  # imported here: sympy is slow to import and most answers never need it
        import sympy
        from math_verify import LatexExtractionConfig, parse, verify
        from math_verify.errors import TimeoutException
    except ImportError:
        return False
    if not any(d in latex for d in ("$", "\\(", "\\[", "\\boxed")):
        latex = f"${latex}$"  # math-verify only extracts LaTeX between delimiters
    # math-verify's timeout uses signal.alarm, which only works on the main thread.
    timeout = 1 if threading.current_thread() is threading.main_thread() else None
    try:
        # LaTeX extraction only: its plain-expression mode goes through sympy's parse_expr, i.e. eval.
        pred = parse(
            latex,
            extraction_config=[LatexExtractionConfig()],
            fallback_mode="no_fallback",
            parsing_timeout=timeout,
        )
        gold_expr = sympy.Rational(gold.numerator, gold.denominator)
        return bool(pred) and verify(gold_expr, pred, timeout_seconds=timeout)
    except (Exception, TimeoutException):  # TimeoutException is a BaseException
        return False


def _gold_and_content(completion: Any, gold: Any) -> tuple[Fraction | None, str | None]:
    """The gold number and the text of the completion's last answer block (None where either is missing)."""
    return parse_number(gold), extract_answer(completion_text(completion))


def _accuracy_score(completion: Any, gold: Any) -> float:
    gold_value, content = _gold_and_content(completion, gold)
    if gold_value is None or content is None:
        return 0.0
    value, unsupported_latex = _parse(content)
    if value is not None:
        return float(value == gold_value)
    return float(unsupported_latex and _latex_equal(content, gold_value))


def accuracy_reward(completions: list[Any], answer: list[Any], **kwargs: Any) -> list[float]:
    """Score 1.0 when the number in a completion's last ``<answer>`` block equals its gold answer, else 0.0.

    ``answer`` is the dataset's gold column ("18", "-3", "1,234", "0.5", "3/4", or int/float), one per
    completion. Both sides go through ``parse_number`` and are compared as exact fractions, so "18.00"
    matches "18" and "0.75" matches "3/4". LaTeX that ``parse_number`` does not handle is checked with
    math-verify, guarded by length and content caps and a timeout. No answer tag, an unparsable gold,
    a missing gold, or any error scores 0.0; this function never raises. Extra TRL columns are ignored.
    """
    return _score_each(_accuracy_score, completions, answer)


def _score_each(score: Callable[[Any, Any], float], completions: list[Any], answer: list[Any]) -> list[float]:
    """`score(completion, gold)` per completion; a missing gold or any error scores 0.0."""
    golds = list(answer) if isinstance(answer, (list, tuple)) else [answer] * len(completions)
    scores = []
    for i, completion in enumerate(completions):
        try:
            scores.append(score(completion, golds[i]) if i < len(golds) else 0.0)
        except Exception:  # never let one odd sample crash a training step
            scores.append(0.0)
    return scores


def _closeness_score(completion: Any, gold: Any) -> float:
    gold_value, content = _gold_and_content(completion, gold)
    value = parse_number(content) if content is not None else None
    if gold_value is None or value is None:
        return 0.0
    return float(max(0, 1 - abs(value - gold_value) / max(abs(gold_value), 1)))


def closeness_reward(completions: list[Any], answer: list[Any], **kwargs: Any) -> list[float]:
    """Partial credit for a near miss: ``1 - |answer - gold| / max(|gold|, 1)``, at least 0 (1.0 when exact).

    Where the exact accuracy reward is 0 for every sample of a group (no gradient), this one still prefers the right
    sign and a closer magnitude: "5 - 9 = -3" (0.75) over "5 - 9 = 1" (0). Parsed as in ``accuracy_reward`` (its
    LaTeX fallback aside); no answer tag, an unparsable answer or gold, or any error scores 0.0. Never raises.
    """
    return _score_each(_closeness_score, completions, answer)
