"""Sweeps: a 2x2 multirun run as a user would (subprocess), its report checked against each run's own logs;
failed and unstarted jobs as report rows; a seed multirun reported as one row per setting with confidence intervals;
the paired comparison against a baseline setting, on hand-built run dirs; sweep presets; the pre-flight check of
every job's generation batch."""

import json
import os
import shutil
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
from grpo.evaluation.stats import t_interval
from grpo.report import main as report_main
from grpo.report import write_report
from grpo.sweeps import collect
from grpo.sweeps.baseline import find_baseline
from grpo.sweeps.jobs import BASIC_SWEEPER, check_sweep, grid_jobs
from grpo.sweeps.objective import check_objective, final_metric
from grpo.sweeps.settings import Setting

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
    (events,) = {p.parent for p in run_dir.glob("runs/*/events.out.tfevents.*") if p.parent.name != "completions"}
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
    assert sorted(table.job) == [0, 1, 2, 3]
    # Nothing was evaluated: rows are ranked by final reward.
    assert list(table["reward (final)"]) == sorted(table["reward (final)"], reverse=True)
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
def test_a_seed_multirun_is_reported_as_one_setting_over_its_seeds(tiny_checkpoint, tmp_path):
    sweep_dir = tmp_path / "sweep"
    fixed = [o for o in tiny_overrides(tiny_checkpoint, tmp_path) if not o.startswith("trainer.output_dir")]
    fixed += [DIGIT_REWARD, "eval.after_training=true", "eval.examples=3"]  # eval/comparison.json in each job
    exclude = ",".join(o.split("=")[0].lstrip("+") for o in fixed)
    run_module("grpo.train", "-m", *fixed, "seed=1,2", f"hydra.sweep.dir={sweep_dir}",
               f"hydra.job.config.override_dirname.exclude_keys=[{exclude}]", cwd=tmp_path)  # fmt: skip
    comparisons = [json.loads((sweep_dir / f"seed={seed}" / "eval" / "comparison.json").read_text()) for seed in (1, 2)]

    run_module("grpo.report", str(sweep_dir), cwd=tmp_path)
    (row,) = (row for _, row in pd.read_csv(sweep_dir / "report.csv").iterrows())
    assert (row.n, row.failed) == (2, 0)
    accuracy = t_interval([comparison["trained"]["accuracy"] for comparison in comparisons])
    assert (row["eval accuracy"], row["eval accuracy low"], row["eval accuracy high"]) == pytest.approx(accuracy)
    gain = t_interval([c["trained"]["accuracy"] - c["base"]["accuracy"] for c in comparisons])
    assert (row["eval gain"], row["eval gain low"], row["eval gain high"]) == pytest.approx(gain)
    assert row.fixed == sum(len(comparison["fixed"]) for comparison in comparisons)
    runtimes = [train_runtime(sweep_dir / f"seed={seed}") for seed in (1, 2)]
    assert row["wall time (s)"] == pytest.approx(sum(runtimes) / 2, rel=1e-6)
    page = (sweep_dir / "report.md").read_text()
    assert "| n | failed | eval accuracy (95% CI) | eval gain (95% CI) | fixed | broken |" in page
    assert "2 jobs: 1 setting x 2 seeds (1, 2), 2 finished" in page


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

    _, csv, _ = write_report(sweep_dir, rank="job")
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


def write_comparison(path: Path, base: float, trained: float, problems: int = 100, broken: int = 2) -> None:
    """comparison.json as the held-out evaluation writes it: `fixed` - `broken` = trained - base correct answers."""
    base_correct, trained_correct = round(base * problems), round(trained * problems)
    fixed = trained_correct - base_correct + broken
    path.parent.mkdir(parents=True, exist_ok=True)
    comparison = {
        "base": {"accuracy": base, "correct": base_correct, "n": problems},
        "trained": {"accuracy": trained, "correct": trained_correct, "n": problems},
        "fixed": list(range(fixed)),
        "broken": list(range(fixed, fixed + broken)),
    }
    path.write_text(json.dumps(comparison))


def test_evaluated_accuracy_is_a_column_when_a_run_was_evaluated(tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_dir = fake_job(sweep_dir, 0, ["reward.format.weight=0.5"], [0.4], finished=True)
    fake_job(sweep_dir, 1, ["reward.format.weight=1.0"], [0.6], finished=True)
    write_comparison(run_dir / "comparison.json", base=0.1, trained=0.25)
    # No multirun.yaml (a folder of single runs): the key whose values differ is the swept one.
    table = pd.read_csv(write_report(sweep_dir)[1])
    assert list(table["reward.format.weight"]) == [0.5, 1.0]  # ranked by accuracy, the unevaluated run last
    assert table["eval accuracy"].iloc[0] == 0.25 and pd.isna(table["eval accuracy"].iloc[1])
    assert table["eval gain"].iloc[0] == pytest.approx(0.15)
    assert (table["fixed"].iloc[0], table["broken"].iloc[0]) == (17, 2)


SEED_SWEEP = ["reward=math,verifier", "seed=1,2,3,4"]
# Held-out accuracy by seed; the verifier's seed 4 crashed. Every base model scores 0.40.
ACCURACY = {"math": [0.40, 0.50, 0.45, 0.41], "verifier": [0.46, 0.50, 0.52, None]}


def seed_job(sweep_dir: Path, num: int, overrides: list[str], accuracy: float | None) -> Path:
    """A job dir as `grpo.train -m ... eval.after_training=true` leaves it (no TensorBoard: the trainer_state.json
    fallback); `accuracy` None: a job that crashed before saving, with its error.txt."""
    run_dir = sweep_dir / ",".join(overrides)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": {"job": {"num": num}}}), run_dir / ".hydra" / "hydra.yaml")
    if accuracy is None:
        (run_dir / "error.txt").write_text("Traceback (most recent call last):\nRuntimeError: out of memory\n")
        return run_dir
    log = [{"step": 1, "reward": 0.2}, {"step": 2, "reward": accuracy + 0.1}, {"step": 2, "train_runtime": 30.0 + num}]
    (run_dir / "checkpoint-2").mkdir()
    (run_dir / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"log_history": log}))
    (run_dir / "final").mkdir()
    write_comparison(run_dir / "eval" / "comparison.json", base=0.40, trained=accuracy)
    return run_dir


def seed_sweep(sweep_dir: Path, task: list[str], accuracy: dict[str, list[float | None]]) -> Path:
    """A `reward=... seed=...` multirun dir: multirun.yaml and one job dir per (reward, seed), in launch order."""
    sweep_dir.mkdir()
    multirun = {"hydra": {"sweeper": {"_target_": BASIC_SWEEPER, "params": None}, "overrides": {"task": task}}}
    OmegaConf.save(OmegaConf.create(multirun), sweep_dir / "multirun.yaml")
    for num, job in enumerate(grid_jobs(None, task)):
        values = dict(line.split("=") for line in job)
        seed_job(sweep_dir, num, job, accuracy[values["reward"]][int(values["seed"]) - 1])
    return sweep_dir


def test_a_seed_sweep_is_one_row_per_setting_with_intervals(tmp_path):
    markdown, csv, png = write_report(seed_sweep(tmp_path / "sweep", SEED_SWEEP, ACCURACY))
    table = pd.read_csv(csv)
    assert list(table.reward) == ["verifier", "math"]  # ranked by mean held-out accuracy
    verifier, math_ = (row for _, row in table.iterrows())
    assert (math_.n, math_.failed, verifier.n, verifier.failed) == (4, 0, 3, 1)
    # math: 0.40, 0.50, 0.45, 0.41: mean 0.44, standard deviation 0.0455, t(0.975, 3) = 3.182: +- 0.0723
    assert (math_["eval accuracy"], math_["eval accuracy low"], math_["eval accuracy high"]) == pytest.approx(
        (0.44, 0.3677, 0.5123), abs=1e-4
    )
    assert (math_["eval gain"], math_["eval gain low"]) == pytest.approx((0.04, -0.0323), abs=1e-4)
    assert (math_.fixed, math_.broken) == (16 + 2 * 4, 2 * 4)  # 0 + 10 + 5 + 1 more right answers, 2 broken per seed
    assert math_["reward (final)"] == pytest.approx(0.54) and math_["wall time (s)"] == pytest.approx(31.5)
    assert verifier["eval accuracy"] == pytest.approx((0.46 + 0.50 + 0.52) / 3)

    page = markdown.read_text()
    assert "| reward | n | failed | eval accuracy (95% CI) | eval gain (95% CI) |" in page
    assert "| math | 4 | 0 | 0.440 [0.368, 0.512] | +0.040 [-0.032, +0.112] |" in page
    assert "Student t-interval" in page
    assert "- reward=verifier, seed 4: failed: RuntimeError: out of memory" in page
    assert png.stat().st_size > 10_000


def test_a_seed_sweep_cut_short_tells_unstarted_seeds_from_failed_ones(tmp_path):
    # Seeds first, so every setting has the same seeds done when the sweep stops (here after four of eight jobs).
    sweep_dir = seed_sweep(tmp_path / "sweep", ["seed=1,2,3,4", "reward=math,verifier"], ACCURACY)
    for job in sorted(sweep_dir.glob("seed=3*")) + sorted(sweep_dir.glob("seed=4*")):
        shutil.rmtree(job)
    markdown, csv, _ = write_report(sweep_dir)
    table = pd.read_csv(csv).set_index("reward")
    assert (table.loc["math", "n"], table.loc["math", "failed"]) == (2, 0)  # seeds 3 and 4 did not run: no failure
    page = markdown.read_text()
    assert "8 jobs: 2 settings x 4 seeds (1, 2, 3, 4), 4 finished, 4 not started." in page
    assert "- reward=math, seed 3: not started:" in page


def test_settings_compared_with_a_baseline_seed_by_seed(tmp_path):
    sweep_dir = seed_sweep(tmp_path / "sweep", SEED_SWEEP, ACCURACY)
    markdown, csv, _ = write_report(sweep_dir, baseline="reward=math", rank="job")
    table = pd.read_csv(csv)
    assert list(table.reward) == ["math", "verifier"]  # launch order
    baseline, verifier = (row for _, row in table.iterrows())
    assert pd.isna(baseline.pairs)
    # Seeds 1-3 (the verifier's seed 4 failed): differences 0.06, 0, 0.07; mean 0.0433, standard deviation 0.0379,
    # t(0.975, 2) = 4.303: +- 4.303 * 0.0379 / sqrt(3) = +- 0.0940.
    assert verifier.pairs == 3 and (verifier.wins, verifier.ties, verifier.losses) == (2, 1, 0)
    difference = (verifier["accuracy diff"], verifier["accuracy diff low"], verifier["accuracy diff high"])
    assert difference == pytest.approx((0.0433, -0.0507, 0.1374), abs=1e-4)
    page = markdown.read_text()
    assert "## Against the baseline: reward=math" in page
    assert "| verifier | 3 | +0.043 [-0.051, +0.137] | 2 | 1 | 0 |" in page


def test_seeds_added_by_a_later_sweep_into_the_same_dir_join_their_settings(tmp_path):
    # `seed=1,2` first, then `seed=3` into the same dir: multirun.yaml now names one seed, the dir holds three.
    sweep_dir = seed_sweep(tmp_path / "sweep", ["seed=1,2", "reward=math,verifier"], ACCURACY)
    later = ["seed=3", "reward=math,verifier"]
    multirun = {"hydra": {"sweeper": {"_target_": BASIC_SWEEPER, "params": None}, "overrides": {"task": later}}}
    OmegaConf.save(OmegaConf.create(multirun), sweep_dir / "multirun.yaml")
    for num, job in enumerate(grid_jobs(None, later)):
        seed_job(sweep_dir, num, job, ACCURACY[job[1].split("=")[1]][2])
    markdown, csv, _ = write_report(sweep_dir, baseline="reward=math", rank="job")
    table = pd.read_csv(csv)
    assert list(table.reward) == ["math", "verifier"] and list(table.n) == [3, 3]
    assert table.pairs.iloc[1] == 3 and (table.wins.iloc[1], table.ties.iloc[1]) == (2, 1)
    assert markdown.read_text().count("| verifier | 3 |") == 2  # one row per setting, in each table


def test_without_a_seed_axis_the_baseline_comparison_is_one_seed_per_job(tmp_path):
    sweep_dir = seed_sweep(tmp_path / "sweep", ["reward=math,verifier", "seed=2"], ACCURACY)
    table = pd.read_csv(write_report(sweep_dir, baseline="reward=verifier")[1])
    # One row per job; seed 2 gave both settings 0.50 held-out accuracy, so they stay in launch order.
    assert list(table.job) == [0, 1] and list(table.status) == ["finished", "finished"]
    math_, verifier = (row for _, row in table.iterrows())
    assert pd.isna(verifier.pairs) and (math_.pairs, math_.ties, math_["accuracy diff"]) == (1, 1, 0.0)
    assert pd.isna(math_["accuracy diff low"])  # one pair has no interval


@pytest.mark.parametrize(
    ("baseline", "says"),
    [
        ("reward=nope", "matches no setting; it could be: --baseline 'reward=math trainer.beta=0'; "),
        ("reward=math", (
            "matches 2 settings; it could be: --baseline 'reward=math trainer.beta=0'; "
            "--baseline 'reward=math trainer.beta=0.04'"
        )),
        ("trainer.lr=1", "trainer.lr is not swept here (swept: reward, trainer.beta)"),
        ("math", "key=value"),
    ],
)  # fmt: skip
def test_a_baseline_that_names_no_single_setting_is_refused_before_any_log_is_read(
    baseline, says, tmp_path, monkeypatch
):
    task = ["reward=math,verifier", "trainer.beta=0,0.04", "seed=1"]
    sweep_dir = tmp_path / "sweep"
    for num, job in enumerate(grid_jobs(None, task)):
        (sweep_dir / str(num) / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create(job), sweep_dir / str(num) / ".hydra" / "overrides.yaml")
    monkeypatch.setattr(collect, "read_history", lambda run_dir: pytest.fail(f"read {run_dir}'s logs"))
    with pytest.raises(SystemExit) as refused:
        report_main([str(sweep_dir), "--baseline", baseline])
    assert str(refused.value).startswith(f"error: --baseline '{baseline}'") and says in str(refused.value)
    assert not (sweep_dir / "report.md").exists()


@pytest.mark.parametrize(
    ("baseline", "expected"),
    [("speedups.shared_prefix=false", "False"), ("speedups.shared_prefix=True", "True"), ("lr=0.50", "0.5")],
)
def test_a_baseline_is_matched_as_hydra_reads_its_value(baseline, expected):
    # Hydra's sweeper writes `speedups.shared_prefix=false,true` into each job's overrides as `False` / `True`.
    key = baseline.partition("=")[0]
    settings = [Setting(values={key: value}, runs=[]) for value in ("False", "True", "0.5", "1")]
    assert find_baseline(settings, baseline).values[key] == expected
    with pytest.raises(ConfigError, match="matches no setting"):
        find_baseline([Setting(values={key: "1"}, runs=[])], f"{key}=true")  # true is not the number 1


def test_a_seed_sweep_without_evaluation_ranks_by_reward(tmp_path):
    sweep_dir = seed_sweep(tmp_path / "sweep", SEED_SWEEP, ACCURACY)
    for comparison in sweep_dir.glob("*/eval/comparison.json"):
        comparison.unlink()
    table = pd.read_csv(write_report(sweep_dir)[1])
    assert "eval accuracy" not in table.columns and list(table.reward) == ["verifier", "math"]
    with pytest.raises(ConfigError, match="--rank accuracy: no run was evaluated"):
        write_report(sweep_dir, rank="accuracy")


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
