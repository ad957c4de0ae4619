"""The trained model to evaluate: where its weights are, and the training config that makes the comparison fair.

A training run dir holds `final/` (the LoRA adapter, or the full model with `model.lora=null`), `checkpoint-<step>/`
folders and `resolved_config.yaml`. Evaluating with a different prompt, checkpoint or reward than training used would
measure the wrong thing, so the run's own `model`, `dataset` and `reward` groups are used unless the command line says
otherwise.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from grpo.errors import ConfigError
from grpo.runs.layout import FINAL_DIR, RESOLVED_CONFIG
from grpo.runs.resume import checkpoints

log = logging.getLogger(__name__)

ADAPTER_FILE = "adapter_config.json"
MODEL_FILE = "config.json"
GROUPS = ("model", "dataset", "reward")
# The evaluation's own dataset keys: the held-out split and the quick-mode limit, never training's.
EVAL_KEYS = ("dataset.split", "dataset.limit")
_ABSENT = object()


def find_weights(run: str) -> Path:
    """The folder holding the trained weights: `<run>/final`, or `run` itself when it is a checkpoint or adapter."""
    path = Path(run).expanduser()
    if not path.is_dir():
        raise ConfigError(f"eval.run={run}: no such folder. Point it at a training run dir (outputs/<date>/<time>).")
    if (path / FINAL_DIR).is_dir():
        path = path / FINAL_DIR
    if (path / ADAPTER_FILE).is_file() or (path / MODEL_FILE).is_file():
        return path
    found = checkpoints(path)
    hint = f" Its latest checkpoint: eval.run={found[-1]}" if found else ""
    raise ConfigError(
        f"eval.run={run}: holds no final/ folder, {ADAPTER_FILE} or {MODEL_FILE} (is training still running?).{hint}"
    )


def is_adapter(weights: Path) -> bool:
    """True for a PEFT adapter (applied to the base model), False for a full fine-tuned model."""
    return (weights / ADAPTER_FILE).is_file()


def load_training_config(weights: Path) -> DictConfig | None:
    """The run's `resolved_config.yaml`, next to the weights or in the run dir above them; None when absent."""
    for folder in (weights, weights.parent):
        if (folder / RESOLVED_CONFIG).is_file():
            return OmegaConf.load(folder / RESOLVED_CONFIG)
    return None


def match_training(cfg: DictConfig, training: DictConfig | None, overrides: Sequence[str]) -> DictConfig:
    """A copy of `cfg` whose `model`, `dataset` and `reward` groups are training's, except where `overrides` speak.

    Keys set on the command line (`dataset.prompt.examples=[]`, `~reward.format`, `+reward.x=...`) apply on top of
    training's group. A preset named there (`dataset=gsm8k`) replaces training's group only when it is another model,
    task or reward set than training's: naming training's own preset keeps training's exact values, which may differ
    from the preset's current YAML. `dataset.split` and `dataset.limit` always keep the evaluation's values.
    `eval.max_new_tokens` is training's completion budget (`trainer.max_completion_length`, however it was set)
    unless the command line gives it.
    """
    if training is None:
        return cfg
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    picked = {override.key_or_group for override in parsed}
    keys = [override.key_or_group for override in parsed if "." in override.key_or_group] + list(EVAL_KEYS)
    matched = copy.deepcopy(cfg)
    with open_dict(matched):
        for group in GROUPS:
            if group not in training:
                continue
            if group in picked and identity(group, cfg[group]) != identity(group, training[group]):
                continue  # another model, task or reward set than training's: the named preset
            section = OmegaConf.create(OmegaConf.to_container(training[group]))
            for key in (key for key in keys if key.split(".", 1)[0] == group):
                _copy_key(cfg, section, key)
            matched[group] = section
        budget = OmegaConf.select(training, "trainer.max_completion_length")
        if budget is not None and "eval.max_new_tokens" not in picked:
            matched.eval.max_new_tokens = budget
    return matched


def identity(group: str, section: DictConfig) -> object:
    """What makes two configs of a group the same preset: the model id, the dataset loader, the reward names."""
    if group == "model":
        return section.id
    if group == "dataset":
        return section._target_
    return sorted(name for name, entry in section.items() if entry is not None)


def _copy_key(source: DictConfig, section: DictConfig, key: str) -> None:
    # `key` is dotted from the root ("dataset.size"); `section` is that group's node.
    inner = key.split(".", 1)[1]
    value = OmegaConf.select(source, key, default=_ABSENT)
    if value is not _ABSENT:
        OmegaConf.update(section, inner, value, merge=False, force_add=True)
        return
    parent_key, _, name = inner.rpartition(".")
    parent = OmegaConf.select(section, parent_key) if parent_key else section
    if isinstance(parent, DictConfig) and name in parent:  # `~key` deleted it from the evaluation's config
        del parent[name]


def load_base_and_adapter(cfg: DictConfig, checkpoint: str, weights: Path):
    """The base model with the trained LoRA adapter attached (when `weights` is one), and the tokenizer."""
    from peft import PeftModel

    from grpo.models.load import load_model

    model, tokenizer = load_model(cfg, checkpoint)
    log.info("base model: %s from %s (%s)", cfg.id, checkpoint, model.dtype)
    if is_adapter(weights):
        model = PeftModel.from_pretrained(model, weights)
    return model.eval(), tokenizer

