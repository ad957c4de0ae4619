"""Length reward: full marks inside a target range of completion length, a smooth penalty outside it.

Without it, a reward model's preference for longer answers (Singhal et al., 2023, arXiv:2310.03716) pushes
completions to the generation limit, where they are cut mid-sentence; and a policy that finds short answers safe
learns to say almost nothing. The penalty is a Cauchy-shaped decay: it never reaches 0, so two completions far
outside the range still differ and GRPO keeps a direction to move in.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from grpo.config.targets import checked_by
from grpo.rewards.text import completion_text

Unit = Literal["tokens", "chars"]
UNITS = get_args(Unit)


def check_length_settings(min_length: int, max_length: int, unit: str, tolerance: float) -> None:
    """Refuse a range that cannot hold or a unit we do not count in (ValueError naming the argument)."""
    if unit not in UNITS:
        raise ValueError(f"unit={unit!r}: choose one of {list(UNITS)}")
    if not 0 <= min_length <= max_length:
        raise ValueError(f"min_length={min_length}, max_length={max_length}: need 0 <= min_length <= max_length")
    if not tolerance > 0:
        raise ValueError(f"tolerance={tolerance}: must be above 0 (the distance outside the range that scores 0.5)")


@checked_by(check_length_settings)
def length_reward(
    completions: list[Any],
    completion_ids: list[list[int]] | None = None,
    *,
    min_length: int = 16,
    max_length: int = 96,
    unit: Unit = "tokens",
    tolerance: float = 16.0,
    **kwargs: Any,
) -> list[float]:
    """Score 1.0 for a length in [min_length, max_length], else 1 / (1 + (d / tolerance)^2) at distance d outside.

    Range (0, 1]; 0.5 at `tolerance` outside the range. `unit=tokens` counts the policy's tokens (TRL's
    `completion_ids`, so no tokenizer is needed here), `unit=chars` the characters of the completion text.
    Extra TRL columns are ignored.
    """
    check_length_settings(min_length, max_length, unit, tolerance)
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
