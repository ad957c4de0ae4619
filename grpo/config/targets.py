"""A config node that names a callable (`_target_` and its arguments) checked against that callable, before it is
built or called.

Hydra's `instantiate` finds a misspelt argument only when it calls the target, and with `_partial_: true` (reward
functions) not even then: the partial accepts anything, a function with `**kwargs` swallows it, and a bad value
shows at the first training step, after the model has loaded. We read what the target itself declares instead of
keeping a second list: its signature (argument names, required ones), its type hints (`Literal` choices, numbers,
strings, booleans, optional values) and, for ranges a hint cannot say, the check it names with `@checked_by`.
"""

from __future__ import annotations

import difflib
import inspect
import re
import typing
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Any, Literal

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from grpo.config.values import is_whole_number
from grpo.errors import ConfigError


def checked_by(check: Callable[..., None]) -> Callable:
    """Mark a function with the check of its settings (it raises ValueError): `check_call` runs it on the
    configured values, so a reward used as a partial is refused when it is built, not when it first scores."""

    def mark(function: Callable) -> Callable:
        function.check_arguments = check
        return function

    return mark


def check_call(key: str, cfg: DictConfig, supplied: frozenset[str] = frozenset()) -> None:
    """Refuse arguments `cfg._target_` does not take, values its hints rule out, and (without `_partial_`) missing
    required ones; `supplied` names the arguments that arrive at call time (TRL's columns). Errors name `key.<arg>`."""
    target = _locate(key, cfg.get("_target_"))
    unset = [name for name in cfg if OmegaConf.is_missing(cfg, name)]
    if unset:  # `???` in a preset: the user must give it (reward=verifier's model)
        raise ConfigError(f"{key}.{unset[0]}: this preset leaves it for you to set: {key}.{unset[0]}=...")
    parameters = _parameters(target)
    if parameters is None:  # a builtin or C function without a readable signature: instantiate will tell
        return
    arguments = OmegaConf.to_container(cfg, resolve=True)
    given = {name: value for name, value in arguments.items() if not name.startswith("_")}
    named = [name for name, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for name in given:
        if name not in named:  # `**kwargs` takes TRL's columns, not settings
            raise ConfigError(f"{key}.{name}: {_name(target)} has no argument '{name}'; {_suggest(name, named)}")
    hints = _hints(target)
    for name, value in given.items():
        problem = _mismatch(value, hints.get(name, Any))
        if problem:
            raise ConfigError(f"{key}.{name}={value!r}: {problem}.")
    if not cfg.get("_partial_", False):
        unset = [name for name, p in parameters.items() if is_required(p) and name not in given]
        required = [name for name in unset if name not in supplied]
        if required:
            raise ConfigError(f"{key}.{required[0]}: {_name(target)} needs it; set {key}.{required[0]}=...")
    _run_own_check(key, target, parameters, given)


def takes_argument(key: str, cfg: DictConfig, name: str) -> bool:
    """Whether `cfg._target_` has an argument `name` (True when its signature cannot be read)."""
    parameters = _parameters(_locate(key, cfg.get("_target_")))
    return parameters is None or name in parameters


def _locate(key: str, target: object) -> Callable:
    if not isinstance(target, str):
        raise ConfigError(f"{key}._target_: the import path of a function or class, e.g. grpo.rewards.format_reward.")
    try:
        located = get_object(target)
    except Exception as error:  # ImportError, AttributeError, or the module's own failure on import
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"{key}._target_={target} cannot be imported: {reason}.") from None
    if not callable(located):
        raise ConfigError(f"{key}._target_={target} is not a function or class.")
    return located


def _parameters(target: Callable) -> dict[str, inspect.Parameter] | None:
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    return dict(signature.parameters)


def _hints(target: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # hints that name what cannot be imported here: check names and required ones only
        return {}


def is_required(parameter: inspect.Parameter) -> bool:
    """A parameter a call must give: no default, and passable by name."""
    return parameter.default is parameter.empty and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY,
    )  # fmt: skip


def _mismatch(value: object, hint: Any) -> str | None:
    """Why `value` cannot be an argument of type `hint` (None when it can, or when the hint is beyond us)."""
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, (str, typing.TypeVar)):
        return None
    if origin is Literal:
        choices = typing.get_args(hint)
        return None if value in choices else f"choose one of {list(choices)}"
    if origin in (typing.Union, UnionType):
        options = typing.get_args(hint)
        problems = [_mismatch(value, option) for option in options]
        return None if None in problems else " or ".join(dict.fromkeys(p for p in problems if p))
    if hint is NoneType:
        return None if value is None else "must be null"
    if hint is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if hint is int:
        return None if is_whole_number(value) else "must be a whole number"
    if hint is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "must be a number"
    if hint is str:
        return None if isinstance(value, str) else "must be a string"
    return None


def _run_own_check(key: str, target: Callable, parameters: dict[str, inspect.Parameter], given: dict) -> None:
    check = getattr(target, "check_arguments", None)
    if check is None:
        return
    values = {name: p.default for name, p in parameters.items() if p.default is not p.empty} | given
    wanted = inspect.signature(check).parameters
    try:
        check(**{name: value for name, value in values.items() if name in wanted})
    except (ValueError, ConfigError) as error:
        # The checks' messages start with the argument they refuse ("n=0: ..."): then it reads as one key path.
        first = re.match(r"\w+", str(error))
        joint = "." if first and first.group() in parameters else ": "
        raise ConfigError(f"{key}{joint}{error}") from None


def _name(target: Callable) -> str:
    return f"{target.__module__}.{target.__qualname__}"


def _suggest(name: str, named: list[str]) -> str:
    close = difflib.get_close_matches(name, named, n=1)
    return f"did you mean '{close[0]}'?" if close else f"it takes {named}."
