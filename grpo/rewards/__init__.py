"""Reward functions with TRL's signature ``(completions, **columns) -> list[float]``.

Kept import-light: nothing here imports torch or transformers (the reward model imports them when it is built),
and math-verify (sympy) is only imported the first time the accuracy reward meets LaTeX it cannot parse itself.
"""

from grpo.rewards.format import format_reward
from grpo.rewards.length import length_reward
from grpo.rewards.math import accuracy_reward, closeness_reward, parse_number
from grpo.rewards.repetition import repetition_reward
from grpo.rewards.reward_model import RewardModelReward
from grpo.rewards.safety import SafetyReward
from grpo.rewards.text import completion_text, extract_answer, prompt_text

__all__ = [
    "RewardModelReward",
    "SafetyReward",
    "accuracy_reward",
    "closeness_reward",
    "completion_text",
    "extract_answer",
    "format_reward",
    "length_reward",
    "parse_number",
    "prompt_text",
    "repetition_reward",
]
