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
from omegaconf import DictConfig, OmegaConf

from grpo.embedded import cache_root
from grpo.errors import ConfigError
from grpo.launch import world_size

if TYPE_CHECKING:
    from trl import GRPOConfig


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


# `model.dtype` (and `rm.dtype`): auto is the checkpoint's own; bfloat16_if_native is bfloat16 where the hardware
# computes it (`computes_bf16_natively`), else float32.
DTYPES = ("float32", "bfloat16", "float16", "auto", "bfloat16_if_native")


def check_dtype(key: str, name: object) -> None:
    if name not in DTYPES:
        raise ConfigError(f"{key}={name!r}: choose one of {list(DTYPES)}.")


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
    kwargs.update(hardware_defaults(kwargs))
    from trl import GRPOConfig

    try:
        return GRPOConfig(**kwargs)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"trainer: {error}") from None


def hardware_defaults(trainer: dict) -> dict:
    """`use_cpu` and `bf16` for this machine, where the user left them to us (`trainer.bf16: null`, `use_cpu: false`).

    bf16 autocast only pays where the hardware computes bf16: on a CPU without AVX512-BF16 or AMX, torch emulates it
    and the embedded policy's forward+backward took 25-27x as long as in float32 (scripts/benchmark_dtype.py, AVX2 EPYC).
    Without an accelerator, Trainer also refuses bf16 unless told that it runs on the CPU."""
    bf16 = trainer.get("bf16")
    if bf16 is None:
        bf16 = not trainer.get("fp16") and computes_bf16_natively()
    return {"use_cpu": trainer.get("use_cpu") or not has_accelerator(), "bf16": bf16}


def computes_bf16_natively() -> bool:
    """A GPU with bf16 support, or a CPU with AVX512-BF16 or AMX (what oneDNN's bf16 kernels need)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    if has_accelerator():  # MPS, XPU: TRL's own default
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN: assume the slow path
        return False


def has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available() or torch.xpu.is_available()


def check_generation_batch(trainer: dict) -> None:
    """Each generation batch must hold whole groups of `num_generations` completions of the same prompt."""
    group = trainer["num_generations"]
    if not isinstance(group, int) or group < 2:
        raise ConfigError(f"trainer.num_generations={group}: GRPO compares completions in a group; use 2 or more.")
    if trainer.get("auto_find_batch_size"):
        raise ConfigError(
            "trainer.auto_find_batch_size: halving the batch on out of memory would split GRPO's groups; lower "
            "trainer.per_device_train_batch_size instead."
        )
    global_batch = trainer["per_device_train_batch_size"] * world_size()
    if trainer["generation_batch_size"] is not None:
        if trainer["steps_per_generation"] is not None:
            raise ConfigError(
                "trainer.generation_batch_size and trainer.steps_per_generation set the same thing (generation batch "
                "= per_device_train_batch_size * processes * steps_per_generation); give only one of them."
            )
        if trainer["generation_batch_size"] % global_batch:
            raise ConfigError(
                f"trainer.generation_batch_size={trainer['generation_batch_size']} must be a multiple of "
                f"trainer.per_device_train_batch_size * processes = {global_batch}."
            )
        batch, source = trainer["generation_batch_size"], "trainer.generation_batch_size"
    else:
        # TRL gathers every process's completions before grouping, so the global batch must hold whole groups.
        steps = trainer["steps_per_generation"] or trainer["gradient_accumulation_steps"]
        batch = global_batch * steps
        source = "trainer.per_device_train_batch_size * " + (
            "trainer.steps_per_generation" if trainer["steps_per_generation"] else "trainer.gradient_accumulation_steps"
        ) + (f" * {world_size()} processes" if world_size() > 1 else "")
    if batch % group:
        raise ConfigError(
            f"{source} = {batch} completions per generation batch is not divisible by trainer.num_generations="
            f"{group}. Make the batch a multiple of the group size, e.g. trainer.per_device_train_batch_size={group}."
        )
