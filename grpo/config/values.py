"""Checks of single config values (numbers, switches, dtypes) shared by every group's checks."""

from __future__ import annotations

import math

from grpo.errors import ConfigError


def is_whole_number(value: object, at_least: int | None = None) -> bool:
    """An int that is not a bool (YAML's `true` is one to Python), and at least `at_least` when given."""
    return isinstance(value, int) and not isinstance(value, bool) and (at_least is None or value >= at_least)


def is_finite_number(value: object) -> bool:
    """An int or float that is not a bool and not NaN or infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_switch(key: str, value: object, meaning: str = "") -> None:
    """Refuse an on/off key that is not true or false: `filter_groups=yes` would otherwise be truthy as a string."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r}: expected true or false, e.g. {key}=true{meaning}")


# `model.dtype` (and `rm.dtype`): auto is the checkpoint's own; bfloat16_if_native is bfloat16 where the hardware
# computes it (`computes_bf16_natively`), else float32.
DTYPES = ("float32", "bfloat16", "float16", "auto", "bfloat16_if_native")


def check_dtype(key: str, name: object) -> None:
    if name not in DTYPES:
        raise ConfigError(f"{key}={name!r}: choose one of {list(DTYPES)}.")



def check_seed(key: str, seed: object) -> None:
    """numpy's seed, which `set_seed` also sets, takes 0 to 2**32 - 1 only."""
    if not (is_whole_number(seed, at_least=0) and seed < 2**32):
        raise ConfigError(f"{key}={seed!r}: a whole number from 0 to 2**32 - 1, e.g. {key}=42.")
