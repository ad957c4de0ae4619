"""The `trainer` config group is trl.GRPOConfig itself: every field, with the installed TRL's defaults.

We read the fields off the dataclass instead of copying them into YAML, so a new TRL release's options are reachable
as `trainer.<field>` the day it is installed, and a typo is refused by Hydra's struct mode. Importing TRL takes
seconds (torch, transformers), so the fields are kept in a small JSON file per installed TRL and transformers version
(`<cache_root>/trl-fields/`): a mistyped setting is then refused before any of them is imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import importlib.metadata
import json
import os
import re
import tempfile
import typing
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from grpo.cache import cache_root
from grpo.config.paths import CONFIG_DIR
from grpo.errors import ConfigError

if TYPE_CHECKING:
    pass


def grpo_config_fields() -> dict[str, object]:
    """Every init field of trl.GRPOConfig with its default, as plain values OmegaConf can hold."""
    return _grpo_config_summary()["fields"]


def grpo_config_choices() -> dict[str, list]:
    """The allowed values of the GRPOConfig fields typed with a transformers enum (`lr_scheduler_type`, `optim`, ...)."""
    return _grpo_config_summary()["choices"]


@cache
def _grpo_config_summary() -> dict[str, dict]:
    """`{"fields": ..., "choices": ...}`, read from the cache file of the installed TRL and transformers when there is
    one, else from TRL (and then cached)."""
    versions = "-".join(f"{name}-{importlib.metadata.version(name)}" for name in ("trl", "transformers"))
    cached = cache_root() / "trl-fields" / f"{versions}.v2.json"
    try:
        summary = json.loads(cached.read_text())
        if isinstance(summary, dict) and set(summary) == {"fields", "choices"}:
            return summary
    except (OSError, ValueError):
        pass
    summary = {"fields": _read_grpo_config_fields(), "choices": _read_enum_choices()}
    _write_atomically(cached, summary)
    return summary


def _read_grpo_config_fields() -> dict[str, object]:
    from trl import GRPOConfig

    defaults = {}
    for field in dataclasses.fields(GRPOConfig):
        if not field.init:
            continue
        if field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            value = None
        defaults[field.name] = value.value if isinstance(value, enum.Enum) else value
    return defaults


def _read_enum_choices() -> dict[str, list]:
    from trl import GRPOConfig

    choices = {}
    for name, hint in typing.get_type_hints(GRPOConfig).items():
        enums = [arg for arg in typing.get_args(hint) or (hint,) if isinstance(arg, type) and issubclass(arg, enum.Enum)]
        if enums:
            choices[name] = [member.value for member in enums[0]]
    return choices


def _write_atomically(path: Path, content: dict) -> None:
    # Several processes (accelerate launch) may start at once: each writes its own file and renames it into place.
    # A cache that cannot be written (read-only home) only costs the next run the TRL import.
    temporary = None
    try:
        text = json.dumps(content)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as file:
            temporary = file.name
            file.write(text)
        os.replace(temporary, path)
    except (OSError, TypeError, ValueError):
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def register_trl_defaults() -> None:
    """Make `trl_defaults` (all GRPOConfig fields) available to conf/trainer/grpo.yaml's defaults list."""
    ConfigStore.instance().store(group="trainer", name="trl_defaults", node=grpo_config_fields())


TRAINER_PRESET = CONFIG_DIR / "trainer" / "grpo.yaml"
# GRPOConfig fields that another spelling owns and that would otherwise be silently overruled by it.
REFUSED_ALIASES = {"gradient_checkpointing": "model.gradient_checkpointing (transformers' deprecated alias)"}


def linked_trainer_fields() -> dict[str, str]:
    """The trainer fields whose value follows a key of another group (`learning_rate: ${model.learning_rate}`):
    `{field: that key}`. Either spelling sets the same value; read off the preset, so the list cannot go stale."""
    preset = OmegaConf.to_container(OmegaConf.load(TRAINER_PRESET), resolve=False)
    links = {name: re.fullmatch(r"\$\{(\w[\w.]*)\}", value) for name, value in preset.items() if isinstance(value, str)}
    return {name: match.group(1) for name, match in links.items() if match}


def check_trainer_overrides(overrides: Sequence[str]) -> None:
    """Refuse `trainer.<name>=...` command-line overrides that GRPOConfig does not have, suggesting the closest field,
    and one setting given twice: a linked field together with the key it follows, or a refused alias.

    Hydra would refuse unknown fields too, but it suggests `+trainer.<name>`, which only fails later.
    """
    known = grpo_config_fields()
    given = [override.split("=", 1)[0].lstrip("+~") for override in overrides if "=" in override]
    links = linked_trainer_fields()
    for key in given:
        if not key.startswith("trainer."):
            continue
        name = key.split(".")[1]
        if name in REFUSED_ALIASES:
            raise ConfigError(f"trainer.{name}: set {REFUSED_ALIASES[name]} instead.")
        if name in links and links[name] in given:
            raise ConfigError(
                f"trainer.{name} and {links[name]} are one setting (trainer.{name} follows {links[name]}); "
                "give only one of them."
            )
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"Did you mean {', '.join('trainer.' + c for c in close)}?" if close else ""
            raise ConfigError(
                f"trainer.{name}: trl.GRPOConfig has no such field. {hint} "
                "All fields: https://huggingface.co/docs/trl/grpo_trainer#trl.GRPOConfig"
            )


