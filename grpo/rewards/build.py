"""The `reward` group: a dict of named rewards, each `{weight, fn}`, turned into TRL's reward functions and weights.

A reward whose function loads a model (a reward model, a classifier) may say what happens when that model cannot
be loaded (offline, not found, out of memory): `on_unavailable: error` (the default) stops before training with
one message; `on_unavailable: fallback` builds the entry's `fallback` (a dict of rewards of the same
`{weight, fn}` shape, `{}` for none) in its place and logs one warning naming what failed and what replaced it.
Rewards are built before the policy loads, so either way nothing expensive has happened yet.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from grpo.config.targets import check_call, is_required
from grpo.config.values import is_finite_number
from grpo.errors import ConfigError, RewardUnavailable
from grpo.rewards.reward import Reward

log = logging.getLogger(__name__)

ENTRY_KEYS = ("weight", "fn", "on_unavailable", "fallback")
ON_UNAVAILABLE = ("error", "fallback")
# What TRL passes every reward besides the dataset's columns.
TRL_ARGUMENTS = frozenset(
    {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)


def build_rewards(cfg: DictConfig) -> dict[str, Reward]:
    """`{name: Reward}` for every reward entry; an entry set to null (`reward.<name>=null`) is dropped.

    Each function is renamed to its entry's name, which TRL uses for the metric `rewards/<name>/mean`. An entry
    that falls back is replaced by its fallback entries, under their own names (so metrics never pretend that a
    reward model scored what a rule did).
    """
    rewards = _build_entries(cfg, prefix="reward")
    if not rewards:
        raise ConfigError("reward: no rewards are configured; pick a preset such as reward=math.")
    return rewards


def _build_entries(entries: DictConfig, prefix: str) -> dict[str, Reward]:
    weights = _check_entries(entries, prefix)
    rewards: dict[str, Reward] = {}
    for name, weight in weights.items():
        key, entry = f"{prefix}.{name}", entries[name]
        try:
            built = {name: Reward(name, weight, _build_function(key, entry.fn))}
        except RewardUnavailable as error:
            built = _fall_back(key, entry, error)
        for new_name in built:
            if new_name in rewards:
                raise ConfigError(f"{key}: its reward name '{new_name}' is already taken; rename one of them.")
        rewards.update(built)
    return rewards


def _check_entries(entries: DictConfig, prefix: str) -> dict[str, float]:
    """The weight of each entry, after checking every entry and its fallbacks.

    All of it before any function is built: building one may load a model (slow), and a typo in a fallback should
    show on the first run, not on the day the model is unreachable. Fallback functions are built only when needed.
    """
    weights = {}
    for name, entry in entries.items():
        if entry is None:
            continue
        key = f"{prefix}.{name}"
        _check_entry(key, entry)
        # The function's own arguments: names, hinted types and choices, required ones, its declared range checks.
        check_call(f"{key}.fn", entry.fn, supplied=TRL_ARGUMENTS)
        weights[name] = _weight(key, entry.weight)
        if isinstance(entry.get("fallback"), DictConfig):
            _check_entries(entry.fallback, f"{key}.fallback")
    _check_fallback_names(entries, prefix)
    return weights


def check_reward_columns(rewards: dict[str, Reward], columns: set[str]) -> None:
    """Refuse a reward that requires a dataset column the dataset lacks (accuracy on prompts without answers),
    which TRL would otherwise find at the first step, after the model loaded."""
    for name, reward in rewards.items():
        try:
            parameters = inspect.signature(reward.function).parameters.values()
        except (TypeError, ValueError):  # a callable without a readable signature: TRL will tell
            continue
        required = {p.name for p in parameters if is_required(p)}
        missing = sorted(required - TRL_ARGUMENTS - columns)
        if missing:
            raise ConfigError(
                f"reward.{name} needs the dataset column(s) {missing}, which this dataset does not have "
                f"(it has {sorted(columns)}). Pick a dataset with them, or drop the reward: reward.{name}=null"
            )


def _check_entry(key: str, entry: object) -> None:
    if not isinstance(entry, DictConfig) or "weight" not in entry or not isinstance(entry.get("fn"), DictConfig):
        raise ConfigError(
            f"{key}: each reward needs a `weight` and an `fn` ({{_target_: <function>, _partial_: true, ...}}; "
            "see conf/reward/math.yaml)."
        )
    unknown = [k for k in entry if k not in ENTRY_KEYS]
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key; a reward entry has {list(ENTRY_KEYS)}.")
    mode = entry.get("on_unavailable", "error")
    if mode not in ON_UNAVAILABLE:
        raise ConfigError(f"{key}.on_unavailable={mode!r}: choose one of {list(ON_UNAVAILABLE)}.")
    if mode == "fallback" and not isinstance(entry.get("fallback"), DictConfig):
        raise ConfigError(
            f"{key}.on_unavailable=fallback needs {key}.fallback: a dict of rewards to use instead ({{}} for none)."
        )


def _check_fallback_names(entries: DictConfig, prefix: str) -> None:
    taken = {name for name, entry in entries.items() if entry is not None}
    for name, entry in entries.items():
        fallback = None if entry is None else entry.get("fallback")
        if not isinstance(fallback, DictConfig):
            continue
        for fallback_name, fallback_entry in fallback.items():
            if fallback_entry is not None and fallback_name in taken:
                raise ConfigError(
                    f"{prefix}.{name}.fallback.{fallback_name}: '{fallback_name}' is already a reward name; "
                    "rename the fallback entry."
                )
            taken.add(fallback_name)


def _fall_back(key: str, entry: DictConfig, error: RewardUnavailable) -> dict[str, Reward]:
    reason = " ".join(str(error).split())
    if entry.get("on_unavailable", "error") == "error":
        raise ConfigError(
            f"{key}: {reason}. Fix that, or set {key}.on_unavailable=fallback to train with {key}.fallback instead."
        ) from None
    replacements = _build_entries(entry.fallback, prefix=f"{key}.fallback")
    used = ", ".join(f"{name} (weight {r.weight:g})" for name, r in replacements.items()) or "no reward"
    log.warning("%s is unavailable: %s. Training with its fallback instead: %s.", key, reason, used)
    return replacements


def _weight(key: str, weight: object) -> float:
    if not is_finite_number(weight):
        raise ConfigError(f"{key}.weight={weight!r} is not a finite number; use e.g. {key}.weight=0.5")
    return float(weight)


def _build_function(key: str, cfg: DictConfig) -> Callable:
    target = cfg.get("_target_")
    try:
        function = instantiate(cfg, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        if isinstance(cause, RewardUnavailable):
            raise cause from None
        if isinstance(cause, ConfigError):  # a reward's own check names its argument; we add where it sits
            raise ConfigError(f"{key}.fn.{cause}") from None
        raise ConfigError(
            f"{key}.fn._target_={target} cannot be built: {str(cause).splitlines()[0]}. "
            "Give the import path of a function such as grpo.rewards.accuracy_reward, with _partial_: true."
        ) from None
    if not callable(function):
        raise ConfigError(f"{key}.fn._target_={target} is not a function; add `_partial_: true`.")
    return function

