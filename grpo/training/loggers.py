"""Where a run's metrics go: TensorBoard event dirs inside the run dir, and a W&B run opened and closed per run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from grpo.runs.ranks import is_rank_zero

# transformers 5 reads the folder of its TensorBoard callback from this variable only.
TENSORBOARD_DIR_VARIABLE = "TENSORBOARD_LOGGING_DIR"


@contextmanager
def tensorboard_dir(path: Path) -> Iterator[None]:
    """Inside: a Trainer created here logs its TensorBoard curves to `path` instead of a new runs/<time>_<host> per
    start (so a resumed run's curves continue where the interrupted one stopped). transformers 5 reads the folder
    only from this environment variable, when the Trainer creates its callback; it is restored afterwards, so a later
    Trainer in the same process (a sweep job, a test) does not write into this run's folder."""
    previous = os.environ.get(TENSORBOARD_DIR_VARIABLE)
    os.environ[TENSORBOARD_DIR_VARIABLE] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(TENSORBOARD_DIR_VARIABLE, None)
        else:
            os.environ[TENSORBOARD_DIR_VARIABLE] = previous


def finish_wandb(cfg: DictConfig) -> None:
    """transformers leaves the W&B run open; close it so the next run in this process (a sweep job) gets its own."""
    if cfg.wandb is not None:
        import wandb

        if wandb.run is not None:
            wandb.finish()


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



# TensorBoard's Custom Scalars tab: the curves that say whether training works, before the dozens TRL logs.
LAYOUT = {
    "GRPO": {
        "reward (weighted total)": ["Multiline", [r"^train/reward$", r"^eval/reward$"]],
        "each reward's mean": ["Multiline", [r"^train/rewards/.*/mean$"]],
        "held-out accuracy": ["Multiline", [r"^eval/greedy/accuracy$", r"^eval/rewards/accuracy/mean$"]],
        "KL to the reference": ["Multiline", [r"^train/kl$"]],
        "entropy": ["Multiline", [r"^train/entropy$"]],
        "base vs trained (after training)": ["Multiline", [r"^after_training/.*accuracy$"]],
    }
}


def write_tensorboard_layout(log_dir: Path) -> None:
    """Put LAYOUT in the run's TensorBoard folder (an event file of its own beside the Trainer's)."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(log_dir)) as writer:
        writer.add_custom_scalars(LAYOUT)


def log_to_tensorboard(log_dir: Path, step: int, scalars: dict[str, float], texts: dict[str, str]) -> None:
    """Scalars and Markdown texts at one step, in a TensorBoard folder of their own (the after-training comparison)."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(log_dir)) as writer:
        for tag, value in scalars.items():
            if value is not None:
                writer.add_scalar(tag, value, step)
        for tag, text in texts.items():
            writer.add_text(tag, text, step)


def log_comparison(log_dir: Path, step: int, comparison: dict) -> None:
    """The after-training comparison in TensorBoard too: both accuracies and format rates, and the report's table."""
    from grpo.evaluation.report import summary_markdown

    scalars = {
        f"after_training/{model}_{metric}": comparison[model][metric]
        for model in ("base", "trained")
        for metric in ("accuracy", "format_rate")
    }
    log_to_tensorboard(log_dir, step, scalars, {"after_training/summary": summary_markdown(comparison)})
