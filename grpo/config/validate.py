"""Every group of a composed config checked before torch, TRL, PEFT or datasets load, so that a mistake is reported
within a second or two with the key that holds it and the fix. One function per entry point: `check_training`
for `python -m grpo.train`, `check_eval` for `python -m grpo.evaluate`, `check_verifier` for
`python -m grpo.train_rm`. What needs a library or the checkpoint (GRPOConfig, peft.LoraConfig and the model's
layers, the dataset's rows) is checked where it is built, still before the model loads, with the same kind of
message."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from grpo.config.batch import check_generation_batch
from grpo.config.model import check_model
from grpo.config.trainer_values import check_trainer_values
from grpo.config.values import check_dtype, check_seed, check_switch, is_whole_number
from grpo.errors import ConfigError
from grpo.evaluation.after_training import after_training_settings
from grpo.rewards.build import build_rewards
from grpo.rewards.reward import Reward
from grpo.sweeps.objective import check_objective
from grpo.verifier.pairs import ANSWER_FIELDS, PAIR_FIELDS

WANDB_MODES = ("online", "offline", "disabled", "shared")
# What `preflight` takes (grpo/training/preflight.py).
PREFLIGHT_MODES = (True, False, "strict", "only")


def check_training(cfg: DictConfig) -> dict[str, Reward]:
    """`python -m grpo.train`'s config: `seed`, `eval` keys and the held-out rows they need, every reward and its
    arguments and weights, the objective, the `model` and `logger` groups, `trainer` values and the generation batch,
    the switches, and what `eval.after_training` needs (rewards that give accuracy and format rate). Returns the built
    rewards."""
    check_seed("seed", cfg.seed)
    check_training_eval(cfg.eval)
    check_held_out(cfg.dataset, cfg.eval)
    check_switches(cfg)
    rewards = build_rewards(cfg.reward)
    check_learning_signal(rewards)
    check_objective(cfg.objective, rewards)
    check_model(cfg.model)
    check_logger(cfg.logger)
    check_trainer_values(cfg.trainer)
    check_generation_batch(OmegaConf.to_container(cfg.trainer, resolve=True))
    if cfg.eval.after_training:
        check_rewards(rewards)
        check_eval(after_training_settings(cfg))
    return rewards


def check_learning_signal(rewards: dict[str, Reward]) -> None:
    """Refuse rewards that are all weighted 0: every completion then earns the same total, so no advantage and no
    update."""
    if all(reward.weight == 0 for reward in rewards.values()):
        weights = ", ".join(f"reward.{name}.weight=0" for name in rewards)
        raise ConfigError(
            f"{weights}: with every reward weighted 0 all completions score the same and nothing is learned; "
            f"give at least one a weight, e.g. reward.{next(iter(rewards))}.weight=1."
        )


def check_held_out(dataset: DictConfig, cfg: DictConfig) -> None:
    """Evaluation reads the preset's held-out split (`eval.split`) or a file (`eval.path`): the preset must have the
    key that chooses it, or the run would evaluate on its training rows."""
    if not (cfg.every_n_steps or cfg.after_training):
        return
    switch = "eval.every_n_steps" if cfg.every_n_steps else "eval.after_training"
    if cfg.path is not None and "path" not in dataset:
        raise ConfigError(f"eval.path={cfg.path}: {dataset._target_} reads no file; this dataset has no dataset.path.")
    if cfg.path is None and "split" not in dataset:
        raise ConfigError(
            f"{switch}: {dataset._target_} has no held-out split (dataset.split) to evaluate on. Give held-out "
            "prompts as a file, eval.path=FILE.jsonl, or use a dataset with one (dataset=arithmetic, dataset=gsm8k)."
        )


def check_logger(cfg: DictConfig) -> None:
    """The `logger` values transformers and W&B refuse only once the model has loaded."""
    report_to = cfg.report_to
    listed = OmegaConf.is_list(report_to) and all(isinstance(name, str) for name in report_to)
    if not (listed or isinstance(report_to, str)):
        raise ConfigError(f"logger.report_to={report_to!r}: a list of integrations, e.g. [tensorboard], or [].")
    every = cfg.completions_every_n_steps
    if not is_whole_number(every, at_least=0):
        raise ConfigError(f"logger.completions_every_n_steps={every!r}: write completions every N steps; 0: never.")
    if cfg.wandb is not None and cfg.wandb.get("mode") not in WANDB_MODES:
        raise ConfigError(f"logger.wandb.mode={cfg.wandb.get('mode')!r}: choose one of {list(WANDB_MODES)}.")


def check_switches(cfg: DictConfig) -> None:
    """Refuse an on/off key that is not true or false."""
    switches = {"filter_groups": cfg.filter_groups, "save_merged_model": cfg.save_merged_model}
    switches |= {f"speedups.{name}": value for name, value in cfg.speedups.items()}
    for key, value in switches.items():
        check_switch(key, value)
    if cfg.preflight not in PREFLIGHT_MODES:
        raise ConfigError(
            f"preflight={cfg.preflight!r}: true (check the learning signal before the first step), false (skip it), "
            "strict (refuse to start without a signal) or only (stop after the check)."
        )


def check_training_eval(cfg: DictConfig) -> None:
    """Refuse `eval` values a run cannot use (the held-out split and file are checked when they are loaded)."""
    if not is_whole_number(cfg.every_n_steps, at_least=0):
        raise ConfigError(f"eval.every_n_steps={cfg.every_n_steps!r}: evaluate every N steps (a whole number); 0: off.")
    check_switch("eval.after_training", cfg.after_training, " (base vs trained on held-out problems at the end)")
    if cfg.examples is not None and not is_whole_number(cfg.examples, at_least=1):
        raise ConfigError(
            f"eval.examples={cfg.examples!r}: the number of held-out prompts to evaluate (1 or more), or null for all."
        )


def check_eval(cfg: DictConfig) -> None:
    """Refuse `eval` values that cannot work, before any model loads."""
    for key in ("batch_size", "max_new_tokens"):
        if not is_whole_number(cfg[key], at_least=1):
            raise ConfigError(f"eval.{key}={cfg[key]}: must be a positive integer.")
    if cfg.limit is not None and not is_whole_number(cfg.limit, at_least=1):
        raise ConfigError(f"eval.limit={cfg.limit}: the number of problems to evaluate (positive), or null for all.")
    check_switch("eval.do_sample", cfg.do_sample, " (sample at eval.temperature; false: greedy)")
    if cfg.do_sample and not (isinstance(cfg.temperature, (int, float)) and cfg.temperature > 0):
        raise ConfigError(f"eval.temperature={cfg.temperature}: sampling needs a positive temperature.")
    if not is_whole_number(cfg.samples, at_least=1):
        raise ConfigError(f"eval.samples={cfg.samples!r}: completions per problem per model, 1 or more.")
    if cfg.samples > 1 and not cfg.do_sample:
        raise ConfigError(
            f"eval.samples={cfg.samples}: greedy decoding writes the same completion every time; sample with "
            "eval.do_sample=true (at a positive eval.temperature), or set eval.samples=1."
        )
    if not is_whole_number(cfg.examples, at_least=0):
        raise ConfigError(f"eval.examples={cfg.examples}: problems per section of examples.html, 0 or more.")


def check_rewards(rewards: dict[str, Reward]) -> None:
    """Accuracy and format rate are the `accuracy` and `format` rewards' means: both must be configured."""
    for name in ("accuracy", "format"):
        if name not in rewards:
            raise ConfigError(
                f"reward.{name}: the evaluation reports the mean of the `{name}` reward, which is not configured. "
                "Pick a preset that has it: reward=math."
            )


def check_verifier(cfg: DictConfig) -> dict[str, Reward] | None:
    """`python -m grpo.train_rm`'s config: `seed`, the `rm` group, the `model` group (its LoRA trains the reward model)
    and, when answers are sampled, the rewards that label them. Returns those rewards (None with `rm.pairs`)."""
    check_seed("seed", cfg.seed)
    check_rm(cfg.rm)
    check_model(cfg.model, task_type=None)  # the reward model's LoRA task is set where it is built
    if cfg.rm.pairs is not None:
        return None
    rewards = build_rewards(cfg.reward)
    check_learning_signal(rewards)
    return rewards


def check_rm(cfg: DictConfig) -> None:
    """Refuse `rm` values that cannot work, before anything loads."""
    for key, at_least in (
        ("prompts", 1), ("samples_per_prompt", 2), ("max_pairs_per_prompt", 1), ("answer_swaps", 0), ("batch_size", 1)
    ):
        if not is_whole_number(cfg[key], at_least=at_least):
            raise ConfigError(f"rm.{key}={cfg[key]!r}: must be a whole number, at least {at_least}.")
    if not (isinstance(cfg.heldout_fraction, float) and 0 < cfg.heldout_fraction < 1):
        raise ConfigError(f"rm.heldout_fraction={cfg.heldout_fraction!r}: a share of the prompts, between 0 and 1.")
    if not (isinstance(cfg.temperature, (int, float)) and cfg.temperature > 0):
        raise ConfigError(f"rm.temperature={cfg.temperature!r}: sampling needs a positive temperature.")
    check_dtype("rm.dtype", cfg.dtype)
    if cfg.pairs is not None and not Path(cfg.pairs).is_file():
        raise ConfigError(f"rm.pairs={cfg.pairs}: no such file (JSON lines of {list(PAIR_FIELDS)}).")
    if cfg.answers is not None and not Path(cfg.answers).is_file():
        raise ConfigError(f"rm.answers={cfg.answers}: no such file (JSON lines of {list(ANSWER_FIELDS)}).")
    if cfg.answers is not None and cfg.pairs is None:
        raise ConfigError(
            f"rm.answers={cfg.answers}: read only with rm.pairs=FILE; sampling labels its own answers. "
            "Give both, or drop rm.answers."
        )

