"""Values of `trainer` fields that GRPOConfig accepts and the run then fails on, or silently acts on, after the model
has loaded: an unknown `loss_type` fails at the first loss, a negative `temperature` at the first generation, and a
negative `beta` trains the policy away from the base model. Checked before torch, TRL or the model are loaded.

TRL types these fields `str` or `float` and names their allowed values only in its help text, so they are listed here;
tests/test_config.py checks each listed value against that help text, so a TRL release that renames one shows up.
Fields whose type is a transformers enum (`lr_scheduler_type`, `optim`, the `*_strategy` fields) take their choices
from the enum itself (`grpo.config.grpo_config_choices`).
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from grpo.config.trainer_fields import grpo_config_choices, linked_trainer_fields
from grpo.config.values import is_finite_number, is_whole_number
from grpo.errors import ConfigError

# GRPOConfig string fields and the values TRL's trainer accepts (its help text and the branches of grpo_trainer.py).
TRL_CHOICES: dict[str, tuple] = {
    "loss_type": ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"),
    "scale_rewards": ("group", "batch", "none", True, False),
    "importance_sampling_level": ("token", "sequence"),
    "multi_objective_aggregation": ("sum_then_normalize", "normalize_then_sum"),
    "vllm_mode": ("colocate", "server"),
    "vllm_importance_sampling_mode": ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask"),
}

# Numeric fields: (lowest, highest or None for no bound, whether the lowest itself is allowed).
RANGES: dict[str, tuple[float, float | None, bool]] = {
    "learning_rate": (0, None, False),
    "temperature": (0, None, False),
    "top_p": (0, 1, False),
    "top_k": (0, None, True),
    "min_p": (0, 1, True),
    "repetition_penalty": (0, None, False),
    "beta": (0, None, True),
    "epsilon": (0, None, True),
    "epsilon_high": (0, None, True),
    "weight_decay": (0, None, True),
    "max_grad_norm": (0, None, True),
    "num_train_epochs": (0, None, False),
    "save_steps": (0, None, False),  # 0 never saves, whatever save_strategy says
    "logging_steps": (0, None, False),
}

# Fields that count something: whole numbers of at least this.
COUNTS: dict[str, int] = {
    "max_completion_length": 1,
    "num_iterations": 1,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "max_steps": -1,  # -1: run num_train_epochs instead
}

WHOLE_NUMBER_ONLY = {"top_k"}


def check_trainer_values(cfg: DictConfig) -> None:
    """Refuse a `trainer` value outside what its field allows, naming the key the user set it with: the key of another
    group it follows (`learning_rate: ${model.learning_rate}`) unless it was given as `trainer.<field>` itself."""
    trainer = OmegaConf.to_container(cfg, resolve=True)
    follows = {name: key for name, key in linked_trainer_fields().items() if OmegaConf.is_interpolation(cfg, name)}

    def refusal(name: str, value: object, problem: str) -> ConfigError:
        key = f"{follows[name]}={value!r} (trainer.{name})" if name in follows else f"trainer.{name}={value!r}"
        return ConfigError(f"{key}: {problem}.")

    for name, allowed in {**grpo_config_choices(), **TRL_CHOICES}.items():
        value = trainer.get(name)
        if name in trainer and value not in allowed and not (value is None and name not in TRL_CHOICES):
            shown = ", ".join(str(choice).lower() if isinstance(choice, bool) else str(choice) for choice in allowed)
            raise refusal(name, value, f"one of {shown}")
    for name, (low, high, low_allowed) in RANGES.items():
        value = trainer.get(name)
        if value is None:
            continue
        if not is_finite_number(value) or (name in WHOLE_NUMBER_ONLY and not is_whole_number(value)):
            raise refusal(name, value, f"must be a {'whole ' if name in WHOLE_NUMBER_ONLY else ''}number")
        too_low = value < low or (value == low and not low_allowed)
        if too_low or (high is not None and value > high):
            raise refusal(name, value, f"must be {_range(low, high, low_allowed)}")
    for name, least in COUNTS.items():
        if name not in trainer:
            continue
        value = trainer[name]
        if value is None and name == "max_completion_length":
            raise refusal(name, value, "the number of tokens each completion may have, e.g. 256")
        if not is_whole_number(value, at_least=least):
            raise refusal(name, value, f"a whole number of at least {least}")
    if trainer.get("max_steps") == 0:  # transformers trains 0 steps and saves the untrained model
        raise refusal("max_steps", 0, "steps to train (1 or more), or -1 to train trainer.num_train_epochs")


def _range(low: float, high: float | None, low_allowed: bool) -> str:
    start = f"{'at least' if low_allowed else 'above'} {low}"
    return start + (f" and at most {high}" if high is not None else "")
