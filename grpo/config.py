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
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from grpo.embedded import cache_root
from grpo.errors import ConfigError
from grpo.launch import world_size

if TYPE_CHECKING:
    from trl import GRPOConfig


@cache
def grpo_config_fields() -> dict[str, object]:
    """Every init field of trl.GRPOConfig with its default, as plain values OmegaConf can hold; read from the cache
    file of the installed TRL and transformers when there is one, else from TRL (and then cached)."""
    versions = "-".join(f"{name}-{importlib.metadata.version(name)}" for name in ("trl", "transformers"))
    cached = cache_root() / "trl-fields" / f"{versions}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    fields = _read_grpo_config_fields()
    _write_atomically(cached, fields)
    return fields


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


def _write_atomically(path: Path, fields: dict[str, object]) -> None:
    # Several processes (accelerate launch) may start at once: each writes its own file and renames it into place.
    # A cache that cannot be written (read-only home) only costs the next run the TRL import.
    try:
        text = json.dumps(fields)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as file:
            file.write(text)
        os.replace(file.name, path)
    except (OSError, TypeError, ValueError):
        pass


def register_trl_defaults() -> None:
    """Make `trl_defaults` (all GRPOConfig fields) available to conf/trainer/grpo.yaml's defaults list."""
    ConfigStore.instance().store(group="trainer", name="trl_defaults", node=grpo_config_fields())


TRAINER_PRESET = Path(__file__).resolve().parents[1] / "conf" / "trainer" / "grpo.yaml"
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


def build_grpo_config(cfg: DictConfig, reward_weights: list[float], eval_every: int = 0) -> GRPOConfig:
    """trl.GRPOConfig from the `trainer` group, with the weights of the `reward` group.

    `eval_every` > 0 turns on TRL's eval loop every that many steps, one completion per held-out prompt.
    """
    kwargs = OmegaConf.to_container(cfg, resolve=True)
    if eval_every:
        kwargs.update(eval_strategy="steps", eval_steps=eval_every, num_generations_eval=1)
    if kwargs.get("reward_weights") is not None:
        raise ConfigError("trainer.reward_weights: set each reward's weight as reward.<name>.weight instead.")
    check_generation_batch(kwargs)
    kwargs["reward_weights"] = reward_weights
    # Without an accelerator, Trainer refuses TRL's default bf16 unless told it runs on the CPU; say so for the user,
    # since bf16 autocast is also the faster choice on CPUs with bf16 instructions.
    kwargs["use_cpu"] = kwargs["use_cpu"] or not has_accelerator()
    from trl import GRPOConfig

    try:
        return GRPOConfig(**kwargs)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"trainer: {error}") from None


def has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available() or torch.xpu.is_available()


def check_generation_batch(trainer: dict) -> None:
    """Each generation batch must hold whole groups of `num_generations` completions of the same prompt."""
    group = trainer["num_generations"]
    if not isinstance(group, int) or group < 2:
        raise ConfigError(f"trainer.num_generations={group}: GRPO compares completions in a group; use 2 or more.")
    if trainer["generation_batch_size"] is not None:
        batch, source = trainer["generation_batch_size"], "trainer.generation_batch_size"
    else:
        # TRL gathers every process's completions before grouping, so the global batch must hold whole groups.
        steps = trainer["steps_per_generation"] or trainer["gradient_accumulation_steps"]
        batch = trainer["per_device_train_batch_size"] * steps * world_size()
        source = "trainer.per_device_train_batch_size * " + (
            "trainer.steps_per_generation" if trainer["steps_per_generation"] else "trainer.gradient_accumulation_steps"
        ) + (f" * {world_size()} processes" if world_size() > 1 else "")
    if batch % group:
        raise ConfigError(
            f"{source} = {batch} completions per generation batch is not divisible by trainer.num_generations="
            f"{group}. Make the batch a multiple of the group size, e.g. trainer.per_device_train_batch_size={group}."
        )
