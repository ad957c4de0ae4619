"""`Reward`: one entry of the `reward` group, its name, weight and function together."""

from __future__ import annotations

from collections.abc import Callable


class Reward:
    """A reward function under its config name, with its weight in the total reward.

    Calling it calls the function, so the Reward itself is what TRL gets. TRL names its metric `rewards/<name>/mean`
    after `__name__`, which it reads through `functools.partial` to the wrapped function, so a partial cannot rename
    itself; a (picklable) instance can.
    """

    def __init__(self, name: str, weight: float, function: Callable[..., list[float | None]]):
        self.name = self.__name__ = name
        self.weight = weight
        self.function = function

    def __call__(self, *args, **kwargs) -> list[float | None]:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Reward({self.name!r}, weight={self.weight:g})"
