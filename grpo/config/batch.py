"""The batch rule GRPO adds to TRL's: every generation batch holds whole groups of completions of one prompt."""

from __future__ import annotations

from grpo.errors import ConfigError
from grpo.runs.ranks import world_size


def check_generation_batch(trainer: dict) -> None:
    """Each generation batch must hold whole groups of `num_generations` completions of the same prompt."""
    group = trainer["num_generations"]
    if not isinstance(group, int) or group < 2:
        raise ConfigError(f"trainer.num_generations={group}: GRPO compares completions in a group; use 2 or more.")
    if trainer.get("auto_find_batch_size"):
        raise ConfigError(
            "trainer.auto_find_batch_size: halving the batch on out of memory would split GRPO's groups; lower "
            "trainer.per_device_train_batch_size instead."
        )
    global_batch = trainer["per_device_train_batch_size"] * world_size()
    if trainer["generation_batch_size"] is not None:
        if trainer["steps_per_generation"] is not None:
            raise ConfigError(
                "trainer.generation_batch_size and trainer.steps_per_generation set the same thing (generation batch "
                "= per_device_train_batch_size * processes * steps_per_generation); give only one of them."
            )
        if trainer["generation_batch_size"] % global_batch:
            raise ConfigError(
                f"trainer.generation_batch_size={trainer['generation_batch_size']} must be a multiple of "
                f"trainer.per_device_train_batch_size * processes = {global_batch}."
            )
        batch, source = trainer["generation_batch_size"], "trainer.generation_batch_size"
    else:
        # TRL gathers every process's completions before grouping, so the global batch must hold whole groups.
        steps = trainer["steps_per_generation"] or trainer["gradient_accumulation_steps"]
        batch = global_batch * steps
        source = "trainer.per_device_train_batch_size * " + (
            "trainer.steps_per_generation" if trainer["steps_per_generation"] else "trainer.gradient_accumulation_steps"
        ) + (f" * {world_size()} processes" if world_size() > 1 else "")
    if batch % group:
        raise ConfigError(
            f"{source} = {batch} completions per generation batch is not divisible by trainer.num_generations="
            f"{group}. Make the batch a multiple of the group size, e.g. trainer.per_device_train_batch_size={group}."
        )

