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

