"""Read a Hydra multirun dir: one `Run` per job, with its swept values, status, logged metrics and evaluation.

Jobs come from two places so that none is silently dropped: the dirs holding `.hydra/overrides.yaml` (every job that
started: Hydra writes it before calling the task), and, for grid sweeps, the job list that `multirun.yaml` implies (a
job that never started has no dir). Reading is in two steps so that a bad report option is refused at once:
`load_jobs` reads each job's overrides, status and error (small files), `with_metrics` then its logs and evaluation.

Metrics come from the run's TensorBoard events (every logged step, with the end-of-training `train_runtime`); a run
logged without TensorBoard falls back to its newest checkpoint's `trainer_state.json`. The evaluation is the run's
`comparison.json` (`eval.after_training=true` or `python -m grpo.evaluate`): base and trained accuracy on the same
held-out problems.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from grpo.runs.layout import COMPARISON_FILE, ERROR_FILE, FINAL_DIR
from grpo.runs.resume import latest_checkpoint
from grpo.sweeps.jobs import BASIC_SWEEPER, grid_jobs, swept_keys

FINISHED, FAILED, NOT_STARTED = "finished", "failed", "not started"


@dataclass(frozen=True)
class Evaluation:
    """A run's held-out comparison: base and trained accuracy on the same problems, and the problems that changed."""

    base: float
    trained: float
    fixed: int  # problems the base model got wrong and the trained one right
    broken: int  # the reverse
    problems: int

    @property
    def gain(self) -> float:
        return self.trained - self.base


@dataclass
class Run:
    """One job of a sweep. `history` has one row per logged step and one column per metric (`reward`, ...)."""

    num: int | None
    overrides: list[str]
    dir: Path | None = None
    status: str = NOT_STARTED
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    evaluation: Evaluation | None = None
    error: str | None = None  # a failed job's reason: the last line of its error.txt

    def value(self, key: str) -> str | None:
        """The value this job gave `key` on its command line (`trainer.num_generations` -> "4")."""
        for line in self.overrides:
            name, _, value = line.partition("=")
            if name.lstrip("+~") == key:
                return value
        return None


@dataclass
class Sweep:
    """A multirun dir's jobs and how it was launched."""

    dir: Path
    keys: list[str]  # the swept keys, one report column each
    command: str | None  # the command line that launched it, from multirun.yaml
    runs: list[Run]


def load_sweep(sweep_dir: str | Path) -> Sweep:
    """Every job of the multirun in `sweep_dir` with its metrics and evaluation, in launch order."""
    return with_metrics(load_jobs(sweep_dir))


def with_metrics(sweep: Sweep) -> Sweep:
    """The sweep with each started job's logged metrics and evaluation read from its dir."""
    runs = [
        replace(run, history=read_history(run.dir), evaluation=read_evaluation(run.dir)) if run.dir else run
        for run in sweep.runs
    ]
    return replace(sweep, runs=runs)


def load_jobs(sweep_dir: str | Path) -> Sweep:
    """Every job of the multirun in `sweep_dir`, in launch order (Hydra's job number), without metrics."""
    sweep_dir = Path(sweep_dir)
    started = [read_run(hydra_dir.parent) for hydra_dir in sorted(sweep_dir.rglob(".hydra"))]
    started = [run for run in started if run is not None]
    multirun = sweep_dir / "multirun.yaml"
    if multirun.is_file():
        hydra = OmegaConf.load(multirun).hydra
        # The search space set in config (Basic and Optuna sweepers; null when all sweeps are on the command line).
        params = OmegaConf.to_container(hydra.sweeper).get("params")
        task = list(hydra.overrides.task)
        command = "python -m grpo.train -m " + " ".join(shlex.quote(line) for line in task)
        if hydra.sweeper._target_ == BASIC_SWEEPER:
            runs = _with_unstarted_jobs(started, grid_jobs(params, task))
        else:
            runs = sorted(started, key=lambda run: (run.num is None, run.num if run.num is not None else 0))
        # multirun.yaml holds the last sweep launched into this dir; jobs of earlier ones (`seed=4,5` added to a
        # `seed=1,2,3` sweep) make what differs between them a swept key too.
        keys = swept_keys(params, task)
        keys += [key for key in _differing_keys(runs) if key not in keys]
    else:  # not a multirun (e.g. a dir of single runs): the keys whose values differ between runs
        keys = _differing_keys(started)
        command = None
        runs = sorted(started, key=lambda run: (run.num is None, run.num if run.num is not None else 0))
    return Sweep(dir=sweep_dir, keys=keys, command=command, runs=runs)


def read_run(run_dir: Path) -> Run | None:
    """A started job's overrides, status and error; None for a `.hydra` dir that is not a job's."""
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        return None
    hydra_file = run_dir / ".hydra" / "hydra.yaml"
    job = OmegaConf.load(hydra_file).hydra.job if hydra_file.is_file() else None
    return Run(
        num=None if job is None or OmegaConf.is_missing(job, "num") else job.num,  # `???` outside a multirun
        overrides=list(OmegaConf.load(overrides_file)),
        dir=run_dir,
        status=FINISHED if (run_dir / FINAL_DIR).is_dir() else FAILED,
        error=read_error(run_dir),
    )


def read_error(run_dir: Path) -> str | None:
    """Why a job failed, in one line (a traceback's last line is the exception), if it said so."""
    path = run_dir / ERROR_FILE
    lines = path.read_text().strip().splitlines() if path.is_file() else []
    return lines[-1] if lines else None


def read_history(run_dir: Path) -> pd.DataFrame:
    """Logged metrics by step, from TensorBoard events (`train/` prefix dropped), else trainer_state.json."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    columns: dict[str, dict[int, float]] = {}
    for events_dir in sorted({path.parent for path in run_dir.glob("runs/*/events.out.tfevents.*")}):
        # size_guidance 0 keeps every event (TensorBoard otherwise samples 1000 per tag); text events are not needed.
        accumulator = EventAccumulator(str(events_dir), size_guidance={"scalars": 0, "tensors": 1}).Reload()
        for tag in accumulator.Tags()["scalars"]:
            if tag.startswith("train/"):
                column = columns.setdefault(tag.removeprefix("train/"), {})
                column.update({event.step: event.value for event in accumulator.Scalars(tag)})
    if columns:
        return pd.DataFrame(columns).sort_index().rename_axis("step")
    checkpoint = latest_checkpoint(run_dir)  # the newest one with a trainer_state.json
    if checkpoint is None:
        return pd.DataFrame()
    log_history = json.loads((Path(checkpoint) / "trainer_state.json").read_text())["log_history"]
    return pd.DataFrame(log_history).groupby("step").last().sort_index()


def read_evaluation(run_dir: Path) -> Evaluation | None:
    """The newest `comparison.json` in the run dir (`eval/` after training, or where `grpo.evaluate` wrote it)."""
    files = [*run_dir.glob(COMPARISON_FILE), *run_dir.glob(f"*/{COMPARISON_FILE}")]
    files.sort(key=lambda path: path.stat().st_mtime)
    if not files:
        return None
    comparison = json.loads(files[-1].read_text())
    return Evaluation(
        base=float(comparison["base"]["accuracy"]),
        trained=float(comparison["trained"]["accuracy"]),
        fixed=len(comparison["fixed"]),
        broken=len(comparison["broken"]),
        problems=int(comparison["trained"]["n"]),
    )


def _with_unstarted_jobs(started: list[Run], expected: list[list[str]]) -> list[Run]:
    """The jobs of earlier sweeps into this dir (in the order they started), then the last sweep's grid in launch
    order, with a row for each job of it that never started."""
    # Match by override set: a job dir's overrides.yaml holds exactly the strings its sweeper launched it with.
    by_overrides = {frozenset(run.overrides): run for run in started}
    runs = []
    for num, overrides in enumerate(expected):
        run = by_overrides.pop(frozenset(overrides), None) or Run(num=num, overrides=overrides)
        runs.append(run)
    earlier = sorted(by_overrides.values(), key=lambda run: (run.dir / ".hydra" / "overrides.yaml").stat().st_mtime)
    return earlier + runs


def _differing_keys(runs: list[Run]) -> list[str]:
    keys = {line.partition("=")[0].lstrip("+~") for run in runs for line in run.overrides}
    return sorted(key for key in keys if len({run.value(key) for run in runs}) > 1)
