"""A sweep's settings: its jobs grouped by every swept value but the seed.

`python -m grpo.train -m reward=math,math_closeness seed=1,2,3` is two settings of three seeds each. A run's
held-out accuracy moves with the seed alone (LoRA initialisation, prompt order, sampling), so the report compares
settings over their seeds rather than job by job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grpo.evaluation.stats import t_interval
from grpo.sweeps.collect import FINISHED, Run, Sweep

SEED_KEY = "seed"
LEVEL = 0.95  # the confidence level of every interval in the report


@dataclass
class Setting:
    """The jobs that share `values` (every swept key but the seed), in launch order."""

    values: dict[str, str | None]
    runs: list[Run]

    @property
    def key(self) -> tuple:
        """The values alone, as `setting_of` gives them for each of its runs."""
        return tuple(self.values.values())

    @property
    def finished(self) -> list[Run]:
        return [run for run in self.runs if run.status == FINISHED]

    @property
    def unfinished(self) -> list[Run]:
        return [run for run in self.runs if run.status != FINISHED]

    def label(self) -> str:
        """`reward=math, beta=0`: the values, each key without its group (the table's header has it)."""
        return setting_label(self.values)

    def command_line(self) -> str:
        """`reward=math trainer.beta=0`: the values as overrides, as `--baseline` takes them."""
        return " ".join(f"{key}={value}" for key, value in self.values.items()) or "(every job)"


def setting_label(values: dict[str, str | None]) -> str:
    return ", ".join(f"{key.split('.', 1)[-1]}={value}" for key, value in values.items()) or "every job"


def has_seed_axis(sweep: Sweep) -> bool:
    return SEED_KEY in sweep.keys


def setting_keys(sweep: Sweep) -> list[str]:
    return [key for key in sweep.keys if key != SEED_KEY]


def group_settings(sweep: Sweep) -> list[Setting]:
    """The sweep's settings in the order of their first job."""
    keys = setting_keys(sweep)
    settings: dict[tuple, Setting] = {}
    for run in sweep.runs:
        values = {key: run.value(key) for key in keys}
        settings.setdefault(setting_of(run, keys), Setting(values, [])).runs.append(run)
    return list(settings.values())


def setting_of(run: Run, keys: list[str]) -> tuple:
    """What identifies the run's setting: its values of `keys` (the swept keys but the seed)."""
    return tuple(run.value(key) for key in keys)


def interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the 95% Student t-interval of the mean; all nan without values (no seed finished)."""
    return t_interval(values, level=LEVEL) if values else (math.nan, math.nan, math.nan)
