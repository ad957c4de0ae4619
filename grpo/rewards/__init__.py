"""Reward functions with TRL's signature ``(completions, **columns) -> list[float]``.

Kept import-light: nothing here imports torch or transformers, and math-verify (sympy) is only
imported the first time the accuracy reward meets LaTeX it cannot parse itself.
"""

from grpo.rewards.format import format_reward
from grpo.rewards.math import accuracy_reward, parse_number
from grpo.rewards.text import completion_text, extract_answer

__all__ = ["accuracy_reward", "completion_text", "extract_answer", "format_reward", "parse_number"]
