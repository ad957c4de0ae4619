"""Sweeps: a 2x2 multirun run as a user would (subprocess), its report checked against each run's own logs;
failed and unstarted jobs as report rows; sweep presets; the pre-flight check of every job's generation batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import CONF_DIR, DIGIT_REWARD, tiny_overrides
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from grpo.config.trainer_fields import register_trl_defaults
from grpo.errors import ConfigError
from grpo.report import write_report
from grpo.sweeps.jobs import BASIC_SWEEPER, check_sweep, grid_jobs
from grpo.sweeps.objective import check_objective, final_metric

TESTS_DIR = Path(__file__).resolve().parent


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # conftest on the path: the sweep's +reward.digits target lives there.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def final_log(run_dir: Path) -> list[dict]:
    """The trainer's own log_history, from its last checkpoint (one entry per step)."""
    state = json.loads((run_dir / "checkpoint-2" / "trainer_state.json").read_text())
    return [entry for entry in state["log_history"] if "reward" in entry]


def train_runtime(run_dir: Path) -> float:
    (events,) = [p.parent for p in run_dir.glob("runs/*/events.out.tfevents.*") if p.parent.name != "completions"]
    accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
    return accumulator.Scalars("train/train_runtime")[-1].value


@pytest.mark.slow
def test_2x2_multirun_and_its_report_match_each_runs_logs(tiny_checkpoint, tmp_path):
    sweep_dir = tmp_path / "sweep"
    # Each job's dir is Hydra's (no trainer.output_dir); its batch follows its group size (no batch override).
    dropped = ("trainer.output_dir", "trainer.per_device_train_batch_size", "trainer.num_generations")
    fixed = [o for o in tiny_overrides(tiny_checkpoint, tmp_path) if o.split("=")[0] not in dropped] + [DIGIT_REWARD]
    # Name job dirs by the swept keys only: the fixed overrides (a tmp path among them) would make names too long.
    exclude = ",".join(o.split("=")[0].lstrip("+") for o in fixed)
    run_module(
        "grpo.train", "-m", *fixed, "trainer.num_generations=2,4", "reward.format.weight=0.25,0.5",
        f"hydra.sweep.dir={sweep_dir}", f"hydra.job.config.override_dirname.exclude_keys=[{exclude}]",
        cwd=tmp_path,
    )
    names = {p.name for p in sweep_dir.iterdir() if p.is_dir()}
    assert names == {
        f"reward.format.weight={w},trainer.num_generations={g}" for w in ("0.25", "0.5") for g in (2, 4)
    }
    for name in names:
        assert (sweep_dir / name / "final" / "adapter_model.safetensors").is_file()

    run_module("grpo.report", str(sweep_dir), cwd=tmp_path)
    table = pd.read_csv(sweep_dir / "report.csv")
    assert len(table) == 4 and set(table.status) == {"finished"}
    assert list(table.job) == [0, 1, 2, 3]
    for _, row in table.iterrows():
        run_dir = sweep_dir / row["dir"]
        weight, group = row["reward.format.weight"], row["trainer.num_generations"]
        assert row["dir"] == f"reward.format.weight={weight},trainer.num_generations={group}"
        trainer = OmegaConf.load(run_dir / "resolved_config.yaml").trainer
        assert trainer.per_device_train_batch_size == trainer.num_generations == group  # the batch follows the group
        log = final_log(run_dir)
        assert row["steps"] == log[-1]["step"] == 2
        # TensorBoard keeps float32: equal to the trainer's float64 log to float32 precision.
        assert row["reward (final)"] == pytest.approx(log[-1]["reward"], rel=1e-6, abs=1e-7)
        assert row["reward (best)"] == pytest.approx(max(e["reward"] for e in log), rel=1e-6, abs=1e-7)
        for name in ("format", "accuracy", "digits"):
            expected = log[-1][f"rewards/{name}/mean"]
            assert row[f"rewards/{name}/mean (final)"] == pytest.approx(expected, rel=1e-6, abs=1e-7)
        assert row["wall time (s)"] == pytest.approx(train_runtime(run_dir), rel=1e-6)
        assert row["steps/s"] == pytest.approx(2 / row["wall time (s)"])
    markdown = (sweep_dir / "report.md").read_text()
    assert markdown.count("| finished |") == 4 and "![reward by run](report.png)" in markdown
    assert (sweep_dir / "report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_bad_job_fails_alone_and_the_report_says_why(tiny_checkpoint, tmp_path):
    sweep_dir = tmp_path / "sweep"
    fixed = [o for o in tiny_overrides(tiny_checkpoint, tmp_path, steps=1) if not o.startswith("trainer.output_dir")]
    exclude = ",".join(o.split("=")[0].lstrip("+") for o in fixed)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "grpo.train", "-m", *fixed, "reward.format.weight=0.5,heavy,1.0",
         f"hydra.sweep.dir={sweep_dir}", f"hydra.job.config.override_dirname.exclude_keys=[{exclude}]"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0  # the sweep as a whole reports that a job failed, after running all of them
    for weight in ("0.5", "1.0"):
        assert (sweep_dir / f"reward.format.weight={weight}" / "final" / "adapter_model.safetensors").is_file()
    error = (sweep_dir / "reward.format.weight=heavy" / "error.txt").read_text()
    assert "reward.format.weight='heavy' is not a finite number" in error

    markdown, csv, _ = write_report(sweep_dir)
    table = pd.read_csv(csv, dtype={"reward.format.weight": str})
    assert list(table.status) == ["finished", "failed", "finished"]
    assert "reward.format.weight='heavy' is not a finite number" in table.note[1]


def fake_job(sweep_dir: Path, num: int, overrides: list[str], rewards: list[float], finished: bool) -> Path:
    """A job dir as Hydra and the trainer leave it: .hydra/, TensorBoard scalars per step, final/ when finished."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir = sweep_dir / ",".join(sorted(overrides))
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": {"job": {"num": num}}}), run_dir / ".hydra" / "hydra.yaml")
    writer = SummaryWriter(str(run_dir / "runs" / "stamp"))
    for step, reward in enumerate(rewards, start=1):
        writer.add_scalar("train/reward", reward, step)
        writer.add_scalar("train/rewards/format/mean", reward / 2, step)
    if finished:
        writer.add_scalar("train/train_runtime", 10.0, len(rewards))
        (run_dir / "final").mkdir()
    writer.close()
    return run_dir


def test_failed_and_unstarted_jobs_are_report_rows(tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    task = ["trainer.num_generations=2,4,8"]
    multirun = {"hydra": {"sweeper": {"_target_": BASIC_SWEEPER, "params": None}, "overrides": {"task": task}}}
    OmegaConf.save(OmegaConf.create(multirun), sweep_dir / "multirun.yaml")
    fake_job(sweep_dir, 0, ["trainer.num_generations=2"], [0.1, 0.5, 0.3], finished=True)
    fake_job(sweep_dir, 1, ["trainer.num_generations=4"], [0.2], finished=False)  # crashed after step 1

    markdown, csv, png = write_report(sweep_dir)
    table = pd.read_csv(csv, dtype={"trainer.num_generations": str})
    assert list(table["trainer.num_generations"]) == ["2", "4", "8"]
    assert list(table.status) == ["finished", "failed", "not started"]
    finished, failed, unstarted = (row for _, row in table.iterrows())
    assert finished["reward (final)"] == pytest.approx(0.3) and finished["reward (best)"] == pytest.approx(0.5)
    assert finished["rewards/format/mean (final)"] == pytest.approx(0.15)
    assert finished["wall time (s)"] == 10.0 and finished["steps/s"] == pytest.approx(0.3)
    assert failed["steps"] == 1 and failed["reward (final)"] == pytest.approx(0.2) and pd.isna(failed["wall time (s)"])
    assert "crashed" in failed["note"]
    assert pd.isna(unstarted["steps"]) and pd.isna(unstarted["dir"]) and "never started" in unstarted["note"]
    assert "| failed |" in markdown.read_text() and "| not started |" in markdown.read_text()
    assert png.is_file()


def test_evaluated_accuracy_is_a_column_when_a_run_was_evaluated(tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_dir = fake_job(sweep_dir, 0, ["reward.format.weight=0.5"], [0.4], finished=True)
    fake_job(sweep_dir, 1, ["reward.format.weight=1.0"], [0.6], finished=True)
    (run_dir / "comparison.json").write_text(json.dumps({"trained": {"accuracy": 0.25}, "base": {"accuracy": 0.1}}))
    # No multirun.yaml (a folder of single runs): the key whose values differ is the swept one.
    table = pd.read_csv(write_report(sweep_dir)[1])
    assert list(table["reward.format.weight"]) == [0.5, 1.0]
    assert table["eval accuracy"].iloc[0] == 0.25 and pd.isna(table["eval accuracy"].iloc[1])


@pytest.mark.parametrize(
    ("preset", "key", "jobs"),
    [("group_size", "trainer.num_generations", 3), ("reward_weights", "reward.format.weight", 4)],
)
def test_sweep_presets_expand_into_jobs(preset, key, jobs):
    register_trl_defaults()
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose("train", overrides=[f"+sweep={preset}"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert list(params) == [key]
    assert len(grid_jobs(params, [f"+sweep={preset}"])) == jobs


def test_check_sweep_names_the_job_and_both_keys_before_anything_runs():
    check_sweep(["-m", "trainer.num_generations=4,8", "reward.format.weight=0.25,0.5"])  # batch follows the group
    check_sweep(["-m", "+sweep=group_size"])
    check_sweep(["trainer.per_device_train_batch_size=8", "trainer.num_generations=3"])  # a single run: train checks it
    with pytest.raises(ConfigError) as error:
        check_sweep(["-m", "trainer.per_device_train_batch_size=8", "trainer.num_generations=4,3"])
    message = str(error.value)
    assert "job #1" in message and "trainer.num_generations=3" in message
    assert "trainer.per_device_train_batch_size" in message


def test_objective_is_a_metric_the_run_logs_and_its_last_value_is_returned():
    check_objective("rewards/accuracy/mean", ["format", "accuracy"])
    check_objective("reward", ["format"])
    with pytest.raises(ConfigError, match="rewards/accuracy/mean"):
        check_objective("rewards/acuracy/mean", ["format", "accuracy"])
    log_history = [{"reward": 0.1, "step": 1}, {"reward": 0.4, "step": 2}, {"train_runtime": 3.0, "step": 2}]
    assert final_metric(log_history, "reward") == 0.4
    with pytest.raises(ValueError, match="never logged"):
        final_metric(log_history, "rewards/format/mean")
