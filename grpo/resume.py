"""Continuing an interrupted run in its own run dir, from its last complete checkpoint.

    python -m grpo.train <same overrides> resume=outputs/2026-11-24/23-00-00                # its latest checkpoint
    python -m grpo.train <same overrides> resume=outputs/2026-11-24/23-00-00/checkpoint-50  # that checkpoint
    python -m grpo.train <same overrides> hydra.run.dir=/scratch/job-42 resume=auto        # requeued jobs

Trainer restores the global step, optimizer, scheduler and RNG states from the checkpoint; TensorBoard events go to
the same `runs/train` folder, so the curves continue.
"""

from __future__ import annotations

import re
from pathlib import Path

from grpo.errors import ConfigError

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Trainer writes trainer_state.json last: a checkpoint without it was cut off mid-write and is skipped.
COMPLETE_MARKER = "trainer_state.json"


def run_dir_of(resume: str | None, default: str) -> str:
    """The run dir a run writes to: the resumed run's own dir, or Hydra's default (a Hydra resolver)."""
    if resume in (None, "auto"):
        return default
    path = Path(resume)
    return str(path.parent if CHECKPOINT.match(path.name) else path)


def find_checkpoint(resume: str | None, run_dir: Path) -> str | None:
    """The checkpoint to resume from: None for a fresh run (also for `auto` when the run dir has none yet)."""
    if resume is None:
        return None
    path = Path(resume)
    if CHECKPOINT.match(path.name):
        if not (path / COMPLETE_MARKER).is_file():
            raise ConfigError(f"resume={resume}: not a complete checkpoint (no {COMPLETE_MARKER}).")
        return str(path)
    if resume != "auto" and not path.is_dir():
        raise ConfigError(f"resume={resume}: no such run dir. Give a run dir or one of its checkpoint-N folders.")
    latest = latest_checkpoint(run_dir)
    if latest is None and resume != "auto":
        raise ConfigError(f"resume={resume}: the run dir holds no complete checkpoint-N folder to resume from.")
    return latest


def checkpoints(run_dir: Path) -> list[Path]:
    """The run dir's checkpoint-N folders, complete or not, in order of N."""
    numbered = [
        (int(match.group(1)), path)
        for path in Path(run_dir).glob("checkpoint-*")
        if (match := CHECKPOINT.match(path.name))
    ]
    return [path for _, path in sorted(numbered)]


def latest_checkpoint(run_dir: Path) -> str | None:
    """The complete checkpoint-N folder with the highest N, if any."""
    complete = [path for path in checkpoints(run_dir) if (path / COMPLETE_MARKER).is_file()]
    return str(complete[-1]) if complete else None


def register_run_dir_resolver() -> None:
    """`${grpo_run_dir:${resume},<default>}` in conf/train.yaml: a resumed run writes into its own run dir."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("grpo_run_dir", run_dir_of, replace=True)
