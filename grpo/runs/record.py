"""What a run dir records so the run can be understood and reproduced later, and what it must never record."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import platform
import subprocess
import sys
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from grpo.errors import ConfigError
from grpo.runs.layout import ERROR_FILE, RESOLVED_CONFIG, RUN_INFO

PACKAGES = ("grpo", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "hydra-core", "math-verify")
# GRPOConfig fields that carry credentials. They would end up in resolved_config.yaml and, pickled, in every
# checkpoint's training_args.bin; the libraries read them from the environment or a login instead.
SECRET_FIELDS = {"hub_token": "HF_TOKEN (or `hf auth login`)", "trackio_token": "the Trackio login"}

log = logging.getLogger(__name__)


def refuse_secrets(trainer: DictConfig) -> None:
    """Stop before anything is written when a credential was given as a config value."""
    for field, instead in SECRET_FIELDS.items():
        if trainer.get(field) is not None:
            raise ConfigError(f"trainer.{field}: credentials are never written to run dirs; use {instead} instead.")


def write_run_record(cfg: DictConfig, run_dir: Path, resumed: dict | None = None) -> None:
    """`resolved_config.yaml` (every value) and `run_info.json` (command, versions, git commit) in the run dir.

    A resumed run keeps the first start's command and adds each resume (`resumed`: checkpoint and changed settings).
    """
    previous = _previous_info(run_dir) if resumed else {}
    (run_dir / RESOLVED_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    info = {
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "git_commit": _git_commit(),
    }
    if resumed:
        info["first_command"] = previous.get("first_command", previous.get("command"))
        info["resumed"] = [*previous.get("resumed", []), resumed]
    (run_dir / RUN_INFO).write_text(json.dumps(info, indent=2, default=str) + "\n")


def _previous_info(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / RUN_INFO).read_text())
    except (OSError, ValueError):
        return {}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """HEAD of the repository this package runs from, with `-dirty` when it has uncommitted changes."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=source, capture_output=True, text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def record_failure(run_dir: Path, error: Exception) -> None:
    """`<run dir>/error.txt`: the message of a config error, the traceback of anything else."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text = f"error: {error}\n" if isinstance(error, ConfigError) else "".join(traceback.format_exception(error))
    (run_dir / ERROR_FILE).write_text(text)
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    log.error("job failed (%s): %s", run_dir / ERROR_FILE, reason)
