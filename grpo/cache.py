"""Where grpo keeps what it derives once per machine: converted GGUF checkpoints and the TRL field list."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Where converted checkpoints live: $GRPO_CACHE, else $XDG_CACHE_HOME/grpo, else ~/.cache/grpo."""
    if os.environ.get("GRPO_CACHE"):
        return Path(os.environ["GRPO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "grpo"

