"""What a process launched by `accelerate launch` or torchrun needs to know: how many there are, and which it is.

The launchers set WORLD_SIZE and RANK for every process they start; a plain `python -m grpo.train` has neither.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from grpo.errors import ConfigError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_rank_zero() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def check_shared_run_dir(argv: Sequence[str]) -> None:
    """Refuse a multi-process launch that leaves each process to pick its own run dir.

    Every process composes its own config, and the default run dir is the time it started: two processes a second
    apart would split one run over two dirs (rank 0's checkpoints in one, rank 1's RNG states in the other).
    """
    if world_size() == 1:
        return
    if "-m" in argv or "--multirun" in argv:
        raise ConfigError("a sweep (-m) cannot run under accelerate launch: launch one run per configuration.")
    given = dict(arg.lstrip("+~").split("=", 1) for arg in argv if "=" in arg and not arg.startswith("-"))
    if "hydra.run.dir" in given or given.get("resume", "null") not in ("null", "auto"):
        return
    raise ConfigError(
        f"{world_size()} processes must share one run dir: add hydra.run.dir=outputs/<name> "
        "(each process composes its own config, and the default dir is the second each one started)."
    )
