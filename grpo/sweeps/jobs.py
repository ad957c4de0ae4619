"""A sweep's jobs as Hydra's default (grid) sweeper launches them, and the keys it sweeps.

Two users: `check_sweep` composes every job's config before the first one trains, so a group size that does not
fit the generation batch stops the sweep at once rather than after hours of earlier jobs; and the report lists the
jobs a multirun dir should hold, so a job that never started still gets a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hydra import compose, initialize_config_dir

# Hydra's own expansion, so job lists match its launch order and override strings exactly. It lives in
# hydra._internal, but its path is also the sweeper `_target_` every multirun.yaml records.
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from grpo.config.paths import CONFIG_DIR
from grpo.errors import ConfigError

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# The trainer keys that decide the generation batch (grpo.config.check_generation_batch reads exactly these).
BATCH_KEYS = (
    "num_generations",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "steps_per_generation",
    "generation_batch_size",
)


def _arguments(params: Mapping[str, str] | None, overrides: Sequence[str]) -> list[str]:
    # As BasicSweeper.sweep does: the config's `hydra.sweeper.params` first, then the command line.
    return [f"{key}={value}" for key, value in (params or {}).items()] + list(overrides)


def grid_jobs(params: Mapping[str, str] | None, overrides: Sequence[str]) -> list[list[str]]:
    """Each job's override strings, in launch order: the product of every swept key's values."""
    parsed = OverridesParser.create().parse_overrides(_arguments(params, overrides))
    return BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]


def swept_keys(params: Mapping[str, str] | None, overrides: Sequence[str]) -> list[str]:
    """Keys given several values (`a,b`, `range(...)`, Optuna's `interval(...)`), without `+`/`~` prefixes."""
    parsed = OverridesParser.create().parse_overrides(_arguments(params, overrides))
    keys = [override.key_or_group for override in parsed if override.is_sweep_override()]
    return list(dict.fromkeys(keys))


def check_sweep(argv: Sequence[str]) -> None:
    """In a grid multirun (`-m`), check every job's generation batch against its group size before any job runs.

    Raises ConfigError naming the job and both keys. Does nothing for a single run (train.py checks that one),
    for other sweepers (Optuna picks values as it goes), or with `--config-*` flags (Hydra then checks per job).
    """
    from hydra._internal.utils import get_args_parser  # the parser `@hydra.main` itself uses

    from grpo.config.batch import check_generation_batch
    from grpo.config.trainer_fields import register_trl_defaults

    args = get_args_parser().parse_args(list(argv))
    if not args.multirun or args.config_path or args.config_name or args.config_dir:
        return
    register_trl_defaults()  # the `trainer` group's base, as train.py's main() registers it
    try:
        batches = _generation_batches(args.overrides)
    except HydraException:
        return  # a bad override or missing plugin: Hydra says so in its own words when it composes the same configs
    for num, (job, batch) in enumerate(batches):
        try:
            check_generation_batch(batch)
        except ConfigError as error:
            raise ConfigError(f"sweep job #{num} ({' '.join(job)}): {error}") from None


def _generation_batches(overrides: Sequence[str]) -> list[tuple[list[str], dict]]:
    """Each grid job's overrides with its composed generation-batch keys; none for a sweeper other than the grid."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    fixed = [override.input_line for override in parsed if not override.is_sweep_override()]
    hydra_overrides = [line for line in fixed if line.startswith(("hydra.", "hydra/"))]
    task_overrides = [line for line in overrides if not line.startswith(("hydra.", "hydra/"))]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        sweeper = compose("train", overrides=fixed, return_hydra_config=True).hydra.sweeper
        if sweeper._target_ != BASIC_SWEEPER:
            return []
        batches = []
        for job in grid_jobs(sweeper.params, task_overrides):
            trainer = compose("train", overrides=job + hydra_overrides).trainer
            batches.append((job, {key: trainer[key] for key in BATCH_KEYS}))
    return batches
