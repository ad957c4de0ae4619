"""The `reward` group: a dict of named rewards, each `{weight, fn}`, turned into TRL's reward functions and weights."""

from __future__ import annotations

import math
from collections.abc import Callable

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from grpo.errors import ConfigError


def build_rewards(cfg: DictConfig) -> dict[str, tuple[Callable, float]]:
    """`{name: (function, weight)}` for every reward entry; an entry set to null (`reward.<name>=null`) is dropped.

    Each function is renamed to its entry's name, which TRL uses for the metric `rewards/<name>/mean`.
    """
    rewards = {}
    for name, entry in cfg.items():
        if entry is None:
            continue
        if not isinstance(entry, DictConfig) or "weight" not in entry or "fn" not in entry:
            raise ConfigError(f"reward.{name}: each reward needs a `weight` and an `fn` (see conf/reward/math.yaml).")
        rewards[name] = (_build_function(name, entry.fn), _weight(name, entry.weight))
    if not rewards:
        raise ConfigError("reward: no rewards are configured; pick a preset such as reward=math.")
    return rewards


def _weight(name: str, weight: object) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise ConfigError(f"reward.{name}.weight={weight!r} is not a finite number; use e.g. reward.{name}.weight=0.5")
    return float(weight)


def _build_function(name: str, cfg: DictConfig) -> Callable:
    target = cfg.get("_target_")
    try:
        function = instantiate(cfg, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        raise ConfigError(
            f"reward.{name}.fn._target_={target} cannot be built: {str(cause).splitlines()[0]}. "
            "Give the import path of a function such as grpo.rewards.accuracy_reward, with _partial_: true."
        ) from None
    if not callable(function):
        raise ConfigError(f"reward.{name}.fn._target_={target} is not a function; add `_partial_: true`.")
    return NamedReward(name, function)


class NamedReward:
    """A reward function under its config name. TRL names metrics by `__name__`, which it reads through
    `functools.partial` to the wrapped function, so a partial cannot rename; a (picklable) instance can."""

    def __init__(self, name: str, function: Callable):
        self.__name__ = name
        self.function = function

    def __call__(self, *args, **kwargs) -> list[float | None]:
        return self.function(*args, **kwargs)
