"""The `model` group's values, checked before torch or PEFT load. Whether `model.lora.target_modules` name layers the
checkpoint has is checked later, once the checkpoint is known (`grpo.models.load.check_lora_targets`)."""

from __future__ import annotations

from omegaconf import DictConfig, ListConfig

from grpo.config.values import check_dtype, check_switch, is_finite_number, is_whole_number
from grpo.errors import ConfigError


def check_model(cfg: DictConfig, task_type: str | None = "CAUSAL_LM") -> None:
    """`model.id`, `model.dtype`, the switches and `model.lora`; `task_type` is the LoRA task the entry point trains
    (None: it sets its own)."""
    if not (isinstance(cfg.id, str) and cfg.id):
        raise ConfigError(f"model.id={cfg.id!r}: a Hub id (org/name) or a local model folder.")
    check_dtype("model.dtype", cfg.dtype)
    check_switch("model.trust_remote_code", cfg.trust_remote_code, " (run the model repo's own code)")
    check_switch("model.gradient_checkpointing", cfg.gradient_checkpointing, " (less memory, slower steps)")
    if cfg.lora is not None:
        check_lora(cfg.lora, task_type)


def check_lora(cfg: DictConfig, task_type: str | None) -> None:
    """The LoRA values PEFT accepts in LoraConfig and then fails on (or silently trains nothing with) after the model
    has loaded."""
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"model.lora={cfg!r}: a peft.LoraConfig (see conf/model/), or null to train all weights.")
    if "r" in cfg and not is_whole_number(cfg.r, at_least=1):
        raise ConfigError(f"model.lora.r={cfg.r!r}: the adapter's rank, a whole number of at least 1, e.g. 16.")
    alpha = cfg.get("lora_alpha")
    if "lora_alpha" in cfg and not (is_finite_number(alpha) and alpha > 0):
        # the adapter's output is scaled by lora_alpha / r: 0 leaves the model unchanged and its gradients zero
        raise ConfigError(f"model.lora.lora_alpha={alpha!r}: must be above 0, e.g. twice model.lora.r.")
    dropout = cfg.get("lora_dropout")
    # 1 would drop the adapter's whole input, and with it every gradient
    if "lora_dropout" in cfg and not (is_finite_number(dropout) and 0 <= dropout < 1):
        raise ConfigError(f"model.lora.lora_dropout={dropout!r}: a probability from 0 up to (not including) 1.")
    _check_target_modules(cfg.get("target_modules"))
    if task_type is not None and cfg.get("task_type") not in (None, task_type):
        raise ConfigError(f"model.lora.task_type={cfg.task_type!r}: the policy is a causal LM; use {task_type}.")


def _check_target_modules(targets: object) -> None:
    """A list of module names, one regular expression (a string), or null for PEFT's choice for the architecture."""
    if targets is None or isinstance(targets, str):
        return
    if not (isinstance(targets, ListConfig) and len(targets) and all(isinstance(name, str) for name in targets)):
        raise ConfigError(
            f"model.lora.target_modules={targets!r}: the layer names to adapt, e.g. [q_proj,v_proj], or all-linear."
        )
