"""Train a language model with GRPO (Group Relative Policy Optimisation; Shao et al., 2024, arXiv:2402.03300).

For every prompt the policy samples a group of `trainer.num_generations` completions; each is scored by the
weighted rewards of the `reward` group; a completion's advantage is its reward relative to its group's mean
(divided by the group's std), so no value network is needed. TRL's GRPOTrainer does the algorithm; this script
turns a Hydra config into its parts, checking every input before the model loads:

    validate config -> build rewards -> GRPOConfig -> dataset -> check model -> load model -> train -> save

    python -m grpo.train model=smollm2-135m dataset=arithmetic mode=quickstart   # offline, CPU, a few minutes
    python -m grpo.train                                                          # Qwen2.5-0.5B on GSM8K
    python -m grpo.train -m trainer.num_generations=4,8 reward.format.weight=0.25,0.5   # a sweep

Each run dir (outputs/<date>/<time>) holds the resolved config and run info (versions, git commit), TensorBoard
events (`runs/`), checkpoints, sampled completions and the final adapter with its tokenizer (`final/`).
Ctrl-C or SIGTERM saves a checkpoint and the adapter before exiting; `resume=<run dir>` continues the run.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

# Only modules that load in well under a second here: every check runs before torch, TRL, PEFT or datasets are
# imported (seconds), so that a mistake is reported at once. The modules that need them are imported in `train`.
from grpo.config.paths import CONFIG_DIR
from grpo.config.trainer_fields import check_trainer_overrides, register_trl_defaults
from grpo.config.validate import check_training
from grpo.errors import ConfigError
from grpo.runs.layout import TENSORBOARD_DIR
from grpo.runs.ranks import check_shared_run_dir, is_rank_zero
from grpo.runs.record import record_failure, refuse_secrets, write_run_record
from grpo.runs.resume import changes_on_resume, find_checkpoint, register_run_dir_resolver
from grpo.sweeps.jobs import check_sweep
from grpo.sweeps.objective import final_metric

log = logging.getLogger(__name__)


def train(cfg: DictConfig):
    """Run one GRPO training from a composed config; returns the trainer (its model is the trained policy), or None
    with `preflight=only`."""
    run_dir = Path(cfg.trainer.output_dir)
    refuse_secrets(cfg.trainer)
    resume_from = find_checkpoint(cfg.resume, run_dir)
    changes = changes_on_resume(run_dir, cfg, cfg.resume_allow_changes) if resume_from else {}
    if changes:
        log.warning("resuming with changed settings: %s", {key: f"{a} -> {b}" for key, (a, b) in changes.items()})
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_rank_zero():
        write_run_record(cfg, run_dir, resumed={"from": resume_from, "changes": changes} if resume_from else None)
    rewards = check_training(cfg)

    from transformers import set_seed

    from grpo.data import build_dataset
    from grpo.evaluation.after_training import build_held_out, evaluate_after_training
    from grpo.models.load import build_lora, check_lora_targets, load_model, resolve_checkpoint
    from grpo.rewards.build import check_reward_columns
    from grpo.training.callbacks import CompletionsToTensorBoard, StopOnSignal
    from grpo.training.grpo_config import build_grpo_config
    from grpo.training.loggers import (
        finish_wandb,
        log_comparison,
        start_wandb,
        tensorboard_dir,
        write_tensorboard_layout,
    )
    from grpo.training.memory import keep_freed_memory
    from grpo.training.preflight import run_preflight
    from grpo.training.save import save
    from grpo.training.trainer import GRPOTrainer, applies

    if cfg.speedups.keep_freed_memory:  # before the model loads: it changes how later allocations are served
        applies("keep_freed_memory", keep_freed_memory())
    set_seed(cfg.seed)
    args = build_grpo_config(
        cfg.trainer, reward_weights=[reward.weight for reward in rewards.values()], eval_every=cfg.eval.every_n_steps
    )
    lora = build_lora(cfg.model.lora)
    dataset = build_dataset(cfg.dataset)
    eval_dataset = build_held_out(cfg.dataset, cfg.eval) if cfg.eval.every_n_steps else None
    held_out = None
    if cfg.eval.after_training:
        held_out = eval_dataset if eval_dataset is not None else build_held_out(cfg.dataset, cfg.eval)
    check_reward_columns(rewards, set(dataset.column_names))
    log.info("dataset: %d prompts, e.g. %s", len(dataset), dataset[0]["prompt"][-1]["content"])
    checkpoint = resolve_checkpoint(cfg.model)
    check_lora_targets(lora, checkpoint, cfg.model)
    log.info("rewards: %s", {name: reward.weight for name, reward in rewards.items()})
    start_wandb(cfg, run_dir)

    model, tokenizer = load_model(cfg.model, checkpoint)
    log.info(
        "model: %s from %s (%s, bf16 autocast %s), LoRA: %s",
        cfg.model.id, checkpoint, model.dtype, "on" if args.bf16 else "off", lora is not None,
    )  # fmt: skip
    if not resume_from:  # a resumed policy is no longer the base one the check is about
        run_preflight(cfg.preflight, model, tokenizer, dataset, rewards, args)
    if cfg.preflight == "only":
        log.info("preflight=only: stopping before the first step")
        return None
    stopper = StopOnSignal()
    callbacks = [stopper]
    if cfg.logger.completions_every_n_steps:
        callbacks.append(CompletionsToTensorBoard(run_dir, cfg.logger.completions_every_n_steps))
    with tensorboard_dir(run_dir / TENSORBOARD_DIR / "train"):
        trainer = GRPOTrainer(
            model=model,
            processing_class=tokenizer,
            reward_funcs=list(rewards.values()),
            args=args,
            train_dataset=dataset,
            eval_dataset=eval_dataset,
            peft_config=lora,
            callbacks=callbacks,
            merge_lora_for_generation=cfg.speedups.merge_lora_for_generation,
            score_completions_only=cfg.speedups.score_completions_only,
            skip_zero_advantage=cfg.speedups.skip_zero_advantage,
            contiguous_head_input=cfg.speedups.contiguous_head_input,
            pack_weights_for_generation=cfg.speedups.pack_weights_for_generation,
            vectorised_sampling=cfg.speedups.vectorised_sampling,
            shared_prefix=cfg.speedups.shared_prefix,
            shared_prefill=cfg.speedups.shared_prefill,
            filter_groups=cfg.filter_groups,
            held_out=greedy_held_out(cfg, eval_dataset, rewards),
        )
    if "tensorboard" in args.report_to and is_rank_zero():
        write_tensorboard_layout(run_dir / TENSORBOARD_DIR / "train")
    if resume_from:
        log.info("resuming from %s", resume_from)
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        finish_wandb(cfg.logger)
    save(trainer, run_dir, merged=cfg.save_merged_model)
    trainer.stopped_by = stopper.received
    if stopper.received:
        step = trainer.state.global_step
        log.warning("stopped by %s at step %d; continue with resume=%s", stopper.received, step, run_dir)
    elif held_out is not None and trainer.accelerator.is_main_process:
        comparison = evaluate_after_training(cfg, trainer, held_out, rewards, checkpoint, run_dir)
        if "tensorboard" in args.report_to:
            log_comparison(run_dir / TENSORBOARD_DIR / "train", trainer.state.global_step, comparison)
    return trainer


def greedy_held_out(cfg: DictConfig, eval_dataset, rewards: dict):
    """With `eval.every_n_steps`: held-out greedy accuracy at each evaluation (grpo/training/held_out.py)."""
    from grpo.training.held_out import GreedyHeldOut

    if eval_dataset is None:
        return None
    return GreedyHeldOut(eval_dataset, rewards, cfg.trainer.max_completion_length, cfg.eval.batch_size)


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="train")
def _hydra_main(cfg: DictConfig) -> float:
    if not is_rank_zero():  # info lines once, from rank 0; warnings and errors from every rank
        logging.getLogger().setLevel(logging.WARNING)
    sweep_job = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        trainer = train(cfg)
    except Exception as error:
        if not sweep_job:
            if isinstance(error, ConfigError):
                sys.exit(f"error: {error}")
            raise
        # One bad job must not end the sweep: Hydra records an exception as that job's failure and launches the
        # next (SystemExit would stop them all). The reason stays in the job's dir for the sweep report.
        record_failure(Path(cfg.trainer.output_dir), error)
        raise
    if trainer is None:  # preflight=only
        return float("nan")
    if sweep_job and trainer.stopped_by:  # Ctrl-C or a scheduler's SIGTERM means the sweep, not only this job
        sys.exit(
            f"{trainer.stopped_by} received: the sweep stops here; this job saved a checkpoint, later jobs did not start"
        )
    return final_metric(trainer.state.log_history, cfg.objective)  # what a sweeper (Optuna) optimises


def main() -> None:
    # transformers 5 renamed gradient checkpointing to activation checkpointing; TRL calls the old names every step.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
    register_trl_defaults()
    register_run_dir_resolver()
    try:
        check_trainer_overrides(sys.argv[1:])
        check_shared_run_dir(sys.argv[1:])
        check_sweep(sys.argv[1:])
    except ConfigError as error:
        sys.exit(f"error: {error}")
    _hydra_main()


if __name__ == "__main__":
    main()
