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
from omegaconf import DictConfig, OmegaConf

# Only modules that load in well under a second here: every check runs before torch, TRL, PEFT or datasets are
# imported (seconds), so that a mistake is reported at once. The modules that need them are imported in `train`.
from grpo.arguments import check_switch, is_whole_number
from grpo.config import check_dtype, check_generation_batch, check_trainer_overrides, register_trl_defaults
from grpo.errors import ConfigError
from grpo.evaluate import check_eval, check_rewards
from grpo.launch import check_shared_run_dir, is_rank_zero
from grpo.resume import changes_on_resume, find_checkpoint, register_run_dir_resolver
from grpo.reward_setup import build_rewards
from grpo.run_record import record_failure, refuse_secrets, write_run_record
from grpo.sweep.jobs import check_sweep
from grpo.sweep.objective import check_objective, final_metric
from grpo.trainer_values import check_trainer_values

log = logging.getLogger(__name__)


def train(cfg: DictConfig):
    """Run one GRPO training from a composed config; returns the trainer (its model is the trained policy)."""
    run_dir = Path(cfg.trainer.output_dir)
    refuse_secrets(cfg.trainer)
    resume_from = find_checkpoint(cfg.resume, run_dir)
    changes = changes_on_resume(run_dir, cfg, cfg.resume_allow_changes) if resume_from else {}
    if changes:
        log.warning("resuming with changed settings: %s", {key: f"{a} -> {b}" for key, (a, b) in changes.items()})
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_rank_zero():
        write_run_record(cfg, run_dir, resumed={"from": resume_from, "changes": changes} if resume_from else None)
    rewards = check_settings(cfg)

    from transformers import set_seed

    from grpo.callbacks import CompletionsToTensorBoard, StopOnSignal, tensorboard_dir
    from grpo.config import build_grpo_config
    from grpo.data import build_dataset
    from grpo.model import build_lora, load_model, resolve_checkpoint
    from grpo.reward_setup import check_reward_columns
    from grpo.trainer import GRPOTrainer

    set_seed(cfg.seed)
    args = build_grpo_config(
        cfg.trainer, reward_weights=[weight for _, weight in rewards.values()], eval_every=cfg.eval.every_n_steps
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
    log.info("rewards: %s", {name: weight for name, (_, weight) in rewards.items()})
    start_wandb(cfg, run_dir)

    model, tokenizer = load_model(cfg.model, checkpoint)
    log.info(
        "model: %s from %s (%s, bf16 autocast %s), LoRA: %s",
        cfg.model.id, checkpoint, model.dtype, "on" if args.bf16 else "off", lora is not None,
    )  # fmt: skip
    stopper = StopOnSignal()
    callbacks = [stopper]
    if cfg.logger.completions_every_n_steps:
        callbacks.append(CompletionsToTensorBoard(run_dir, cfg.logger.completions_every_n_steps))
    with tensorboard_dir(run_dir / "runs" / "train"):
        trainer = GRPOTrainer(
            model=model,
            processing_class=tokenizer,
            reward_funcs=[function for function, _ in rewards.values()],
            args=args,
            train_dataset=dataset,
            eval_dataset=eval_dataset,
            peft_config=lora,
            callbacks=callbacks,
            merge_lora_for_generation=cfg.speedups.merge_lora_for_generation,
            score_completions_only=cfg.speedups.score_completions_only,
            skip_zero_advantage=cfg.speedups.skip_zero_advantage,
            contiguous_head_input=cfg.speedups.contiguous_head_input,
            filter_groups=cfg.filter_groups,
        )
    if resume_from:
        log.info("resuming from %s", resume_from)
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        finish_wandb(cfg.logger)
    save(trainer, run_dir, merged=cfg.save_merged_model)
    if stopper.received:
        log.warning("stopped by %s at step %d; continue with resume=%s", stopper.received, trainer.state.global_step, run_dir)
    elif held_out is not None and trainer.accelerator.is_main_process:
        evaluate_after_training(cfg, trainer, held_out, rewards, checkpoint, run_dir)
    return trainer


def evaluate_after_training(cfg: DictConfig, trainer, held_out, rewards: dict, checkpoint: str, run_dir: Path) -> dict:
    """Base vs trained, greedy, on the held-out problems: the report goes to `<run>/eval/`, the table to the log."""
    from grpo.eval.compare import compare_models
    from grpo.evaluate import describe
    from grpo.model import load_model

    settings = after_training_settings(cfg)
    setup = describe(
        OmegaConf.create({"model": cfg.model, "dataset": eval_split(cfg.dataset, cfg.eval), "eval": settings}),
        checkpoint, run_dir / "final", rewards,
    )
    model = trainer.accelerator.unwrap_model(trainer.model)
    full_fine_tune = None if cfg.model.lora is not None else model
    base = load_model(cfg.model, checkpoint)[0] if full_fine_tune is not None else model
    return compare_models(
        settings, base, trainer.processing_class, held_out, rewards, run_dir / "eval", setup, full_fine_tune
    )


def check_settings(cfg: DictConfig) -> dict:
    """The checks that need neither torch, TRL nor datasets, so a mistake in them is reported within a second or two:
    `eval` keys, every reward and its arguments, the objective, `model.dtype`, `trainer` values and the generation
    batch, the switches, and what `eval.after_training` needs (rewards that give accuracy and format rate). Returns the
    built rewards."""
    check_training_eval(cfg.eval)
    check_switches(cfg)
    rewards = build_rewards(cfg.reward)
    check_objective(cfg.objective, rewards)
    check_dtype("model.dtype", cfg.model.dtype)
    check_trainer_values(cfg.trainer)
    check_generation_batch(OmegaConf.to_container(cfg.trainer, resolve=True))
    if cfg.eval.after_training:
        check_rewards(rewards)
        check_eval(after_training_settings(cfg))
    return rewards


def check_switches(cfg: DictConfig) -> None:
    """Refuse an on/off key that is not true or false (grpo.arguments.check_switch)."""
    switches = {"filter_groups": cfg.filter_groups, "save_merged_model": cfg.save_merged_model}
    switches |= {f"speedups.{name}": value for name, value in cfg.speedups.items()}
    for key, value in switches.items():
        check_switch(key, value)


def after_training_settings(cfg: DictConfig) -> DictConfig:
    """`eval.after_training`'s decoding, in the shape of `python -m grpo.evaluate`'s `eval` section."""
    return OmegaConf.create({
        "batch_size": cfg.eval.batch_size,
        "max_new_tokens": cfg.trainer.max_completion_length,  # the completion budget training had (either spelling)
        "do_sample": False,
        "temperature": 1.0,
        "limit": None,  # eval.examples already limits the held-out rows
        "examples": 10,  # problems per section of examples.html
    })


def check_training_eval(cfg: DictConfig) -> None:
    """Refuse `eval` values a run cannot use (the held-out split and file are checked when they are loaded)."""
    if not is_whole_number(cfg.every_n_steps, at_least=0):
        raise ConfigError(f"eval.every_n_steps={cfg.every_n_steps!r}: evaluate every N steps (a whole number); 0: off.")
    check_switch("eval.after_training", cfg.after_training, " (base vs trained on held-out problems at the end)")
    if not is_whole_number(cfg.examples, at_least=1):
        raise ConfigError(f"eval.examples={cfg.examples!r}: the number of held-out prompts to evaluate (1 or more).")


def build_held_out(dataset: DictConfig, cfg: DictConfig):
    """The held-out rows; an error names the `eval` keys that chose them as well as the dataset's own."""
    from grpo.data import build_dataset

    try:
        return build_dataset(eval_split(dataset, cfg))
    except ConfigError as error:
        chosen = f"eval.split={cfg.split}" + (f", eval.path={cfg.path}" if cfg.path is not None else "")
        raise ConfigError(f"{chosen} (the held-out rows): {error}") from None


def eval_split(dataset: DictConfig, cfg: DictConfig) -> DictConfig:
    """The dataset preset pointed at its held-out rows: `eval.split` (or `eval.path`), first `eval.examples`."""
    held_out = dataset.copy()
    held_out.split, held_out.limit = cfg.split, cfg.examples
    if cfg.path is not None:
        held_out.path = cfg.path
    return held_out


def finish_wandb(cfg: DictConfig) -> None:
    """transformers leaves the W&B run open; close it so the next run in this process (a sweep job) gets its own."""
    if cfg.wandb is not None:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def save(trainer, run_dir: Path, merged: bool) -> Path:
    """Write the final adapter (or full model) with its tokenizer to `final/`, and optionally a merged model."""
    final = run_dir / "final"
    trainer.save_model(str(final))
    log.info("final model: %s", final)
    # Every rank saves (ZeRO-3 and FSDP gather weights collectively); one merges. Under ZeRO-3/FSDP rank 0 holds
    # only shards: merge from final/ afterwards with peft's AutoPeftModelForCausalLM instead.
    if merged and trainer.accelerator.is_main_process and hasattr(trainer.model, "merge_and_unload"):
        merged_dir = run_dir / "merged"
        trainer.model.merge_and_unload().save_pretrained(merged_dir)
        trainer.processing_class.save_pretrained(merged_dir)
        log.info("merged model: %s", merged_dir)
    return final


def start_wandb(cfg: DictConfig, run_dir: Path) -> None:
    """Open the W&B run ourselves (transformers' callback then logs into it): its files go to the run dir, the
    whole resolved config is recorded, and each run of a sweep gets its own W&B run. Keys come from `wandb login`
    or WANDB_API_KEY, never from config files."""
    settings = cfg.logger.wandb
    if settings is None or not is_rank_zero():
        return
    import wandb

    wandb.init(
        project=settings.project,
        entity=settings.entity,
        group=settings.group,
        mode=settings.mode,
        dir=str(run_dir),
        name=run_dir.name,
        config=OmegaConf.to_container(cfg, resolve=True),
    )


@hydra.main(version_base=None, config_path="../conf", config_name="train")
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
