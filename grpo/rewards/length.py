"""Length reward: full marks inside a target range of completion length, a smooth penalty outside it.

Without it, a reward model's preference for longer answers (Singhal et al., 2023, arXiv:2310.03716) pushes
completions to the generation limit, where they are cut mid-sentence; and a policy that finds short answers safe
learns to say almost nothing. The penalty is a Cauchy-shaped decay: it never reaches 0, so two completions far
outside the range still differ and GRPO keeps a direction to move in.
"""

from __future__ import annotations

from typing import Any

from grpo.rewards.text import completion_text

UNITS = ("tokens", "chars")


def length_reward(
    completions: list[Any],
    completion_ids: list[list[int]] | None = None,
    *,
    min_length: int = 16,
    max_length: int = 96,
    unit: str = "tokens",
    tolerance: float = 16.0,
    **kwargs: Any,
) -> list[float]:
    """Score 1.0 for a length in [min_length, max_length], else 1 / (1 + (d / tolerance)^2) at distance d outside.

    Range (0, 1]; 0.5 at `tolerance` outside the range. `unit=tokens` counts the policy's tokens (TRL's
    `completion_ids`, so no tokenizer is needed here), `unit=chars` the characters of the completion text.
    Extra TRL columns are ignored.
    """
    if unit not in UNITS or not 0 <= min_length <= max_length or not tolerance > 0:
        raise ValueError(
            f"length_reward: need unit in {list(UNITS)}, 0 <= min_length <= max_length and tolerance > 0; got "
            f"unit={unit!r}, min_length={min_length}, max_length={max_length}, tolerance={tolerance}."
        )
    if unit == "tokens":
        if completion_ids is None:
            raise ValueError("length_reward: unit=tokens needs TRL's completion_ids; use unit=chars outside TRL.")
        lengths = [len(ids) for ids in completion_ids]
    else:
        lengths = [len(completion_text(completion)) for completion in completions]
    return [_score(length, min_length, max_length, tolerance) for length in lengths]


def _score(length: int, low: int, high: int, tolerance: float) -> float:
    distance = max(low - length, length - high, 0)
    return 1.0 / (1.0 + (distance / tolerance) ** 2)
