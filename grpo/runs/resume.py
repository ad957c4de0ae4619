"""Continuing an interrupted run in its own run dir, from its last complete checkpoint.

    python -m grpo.train <same overrides> resume=outputs/2026-11-24/23-00-00                # its latest checkpoint
    python -m grpo.train <same overrides> resume=outputs/2026-11-24/23-00-00/checkpoint-50  # that checkpoint
    python -m grpo.train <same overrides> hydra.run.dir=/scratch/job-42 resume=auto        # requeued jobs

Trainer restores the global step, optimizer, scheduler and RNG states from the checkpoint; TensorBoard events go to
the same `runs/train` folder, so the curves continue. A resume must train the same thing: overrides that change the
model, LoRA, dataset, rewards or the objective (group size, batch, learning rate, KL, loss) are refused with the
differing keys, unless `resume_allow_changes=true`; others (max_steps, logging, checkpoint frequency) are allowed and
written to the log and to `run_info.json` (`resumed`).
"""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from grpo.errors import ConfigError
from grpo.runs.layout import CHECKPOINT_PREFIX, RESOLVED_CONFIG

CHECKPOINT = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")
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
        for path in Path(run_dir).glob(f"{CHECKPOINT_PREFIX}*")
        if (match := CHECKPOINT.match(path.name))
    ]
    return [path for _, path in sorted(numbered)]


def latest_checkpoint(run_dir: Path) -> str | None:
    """The complete checkpoint-N folder with the highest N, if any."""
    complete = [path for path in checkpoints(run_dir) if (path / COMPLETE_MARKER).is_file()]
    return str(complete[-1]) if complete else None


def register_run_dir_resolver() -> None:
    """`${grpo_run_dir:${resume},<default>}` in conf/train.yaml: a resumed run writes into its own run dir."""
    OmegaConf.register_new_resolver("grpo_run_dir", run_dir_of, replace=True)


# What a resumed run must share with the run it continues: the checkpoint's weights and optimizer state belong to
# this model, adapter, data and objective. Keys are dotted prefixes of the resolved config.
FIXED_ON_RESUME = (
    "model.", "dataset.", "reward.", "trainer.num_generations", "trainer.per_device_train_batch_size",
    "trainer.gradient_accumulation_steps", "trainer.generation_batch_size", "trainer.steps_per_generation",
    "trainer.learning_rate", "trainer.lr_scheduler_type", "trainer.beta", "trainer.loss_type",
    "trainer.scale_rewards", "trainer.temperature", "trainer.max_completion_length", "trainer.num_iterations",
    "trainer.epsilon", "trainer.epsilon_high", "trainer.seed", "filter_groups",
)  # fmt: skip


def changes_on_resume(run_dir: Path, cfg: DictConfig, allow_changes: bool) -> dict[str, list]:
    """`{key: [before, now]}` for every resolved value that differs from the run being resumed; refuses (ConfigError)
    a change to what the checkpoint was trained on, unless `allow_changes`. Nothing to compare: `{}`."""
    recorded = Path(run_dir) / RESOLVED_CONFIG
    if not recorded.is_file():
        return {}
    before = _flat(OmegaConf.load(recorded))
    now = _flat(cfg)
    ignored = ("resume", "resume_allow_changes", "hydra.")
    changes = {
        key: [before.get(key), now.get(key)]
        for key in sorted(set(before) | set(now))
        if before.get(key) != now.get(key) and not key.startswith(ignored)
    }
    fixed = [key for key in changes if key.startswith(FIXED_ON_RESUME)]
    if fixed and not allow_changes:
        shown = "; ".join(f"{key}: {changes[key][0]!r} -> {changes[key][1]!r}" for key in fixed[:5])
        more = f" (and {len(fixed) - 5} more)" if len(fixed) > 5 else ""
        raise ConfigError(
            f"resume={run_dir}: these settings differ from the run being resumed: {shown}{more}. Pass the run's own "
            "overrides again (its run_info.json has the command), or resume_allow_changes=true to continue anyway."
        )
    return changes


def _flat(cfg: DictConfig) -> dict[str, object]:
    """The resolved config as `{dotted.key: leaf value}`."""
    flat: dict[str, object] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat
