"""trl.GRPOConfig built from the `trainer` group, the reward weights and this machine's hardware defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from grpo.config.batch import check_generation_batch
from grpo.errors import ConfigError
from grpo.models.hardware import hardware_defaults

if TYPE_CHECKING:
    from trl import GRPOConfig


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
        args = GRPOConfig(**kwargs)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"trainer: {error}") from None
    check_report_to(args.report_to)
    return args


def check_report_to(report_to: list[str]) -> None:
    """Each integration must exist and be installed: transformers checks only when the trainer is built, after the
    model has loaded."""
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    for name in report_to:
        if name not in INTEGRATION_TO_CALLBACK:
            known = ", ".join(INTEGRATION_TO_CALLBACK)
            raise ConfigError(f"logger.report_to: '{name}' is not an integration; one of {known}.")
        if name not in get_available_reporting_integrations():
            raise ConfigError(f"logger.report_to: '{name}' is not installed here; install its package, or drop it.")

