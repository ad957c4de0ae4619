"""`eval.after_training`: base vs trained on the held-out split at the end of `python -m grpo.train`, and the
held-out rows that `eval.every_n_steps` evaluates during training."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from grpo.errors import ConfigError
from grpo.rewards.reward import Reward
from grpo.runs.layout import EVAL_DIR, FINAL_DIR


def evaluate_after_training(
    cfg: DictConfig, trainer, held_out, rewards: dict[str, Reward], checkpoint: str, run_dir: Path
) -> dict:
    """Base vs trained, greedy, on the held-out problems: the report goes to `<run>/eval/`, the table to the log."""
    from grpo.evaluation.compare import compare_models, describe
    from grpo.models.load import load_model

    settings = after_training_settings(cfg)
    setup = describe(
        OmegaConf.create({"model": cfg.model, "dataset": eval_split(cfg.dataset, cfg.eval), "eval": settings}),
        checkpoint, run_dir / FINAL_DIR, rewards,
    )
    model = trainer.accelerator.unwrap_model(trainer.model)
    full_fine_tune = None if cfg.model.lora is not None else model
    base = load_model(cfg.model, checkpoint)[0] if full_fine_tune is not None else model
    return compare_models(
        settings, base, trainer.processing_class, held_out, rewards, run_dir / EVAL_DIR, setup, full_fine_tune
    )


def after_training_settings(cfg: DictConfig) -> DictConfig:
    """`eval.after_training`'s decoding, in the shape of `python -m grpo.evaluate`'s `eval` section."""
    return OmegaConf.create({
        "batch_size": cfg.eval.batch_size,
        "max_new_tokens": cfg.trainer.max_completion_length,  # the completion budget training had (either spelling)
        "do_sample": False,
        "temperature": 1.0,
        "samples": 1,  # greedy: one completion per problem
        "limit": None,  # eval.examples already limits the held-out rows
        "examples": 10,  # problems per section of examples.html
    })


def build_held_out(dataset: DictConfig, cfg: DictConfig):
    """The held-out rows; an error names the `eval` keys that chose them as well as the dataset's own."""
    from grpo.data import build_dataset

    try:
        return build_dataset(eval_split(dataset, cfg))
    except ConfigError as error:
        chosen = [f"eval.split={cfg.split}"] if "split" in dataset else []
        chosen += [f"eval.path={cfg.path}"] if cfg.path is not None else []
        raise ConfigError(f"{', '.join(chosen)} (the held-out rows): {error}") from None


def eval_split(dataset: DictConfig, cfg: DictConfig) -> DictConfig:
    """The dataset preset pointed at its held-out rows: `eval.split` (or `eval.path`), first `eval.examples`."""
    held_out = dataset.copy()
    held_out.limit = cfg.examples
    if "split" in held_out:  # a preset without splits evaluates on `eval.path` (check_held_out)
        held_out.split = cfg.split
    if cfg.path is not None:
        held_out.path = cfg.path
    return held_out

