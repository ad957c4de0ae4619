"""Interrupted runs resume, signals save before exiting, runs reproduce, credentials never reach a run dir."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DIGIT_REWARD, compose_config, tiny_overrides
from omegaconf import OmegaConf
from safetensors.torch import load_file

from grpo.errors import ConfigError
from grpo.runs.resume import changes_on_resume, find_checkpoint, latest_checkpoint
from grpo.train import train

ROOT = Path(__file__).resolve().parents[1]


def start_cli(overrides: list[str]) -> subprocess.Popen:
    """`python -m grpo.train` as a user runs it; the tests folder is importable for the test-only reward."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "grpo.train", *overrides],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def cli_overrides(checkpoint: Path, run_dir: Path, steps: int) -> list[str]:
    return [
        *tiny_overrides(checkpoint, run_dir, steps=steps),
        DIGIT_REWARD,
        f"hydra.run.dir={run_dir}",
        "trainer.save_steps=2",
        "logger.completions_every_n_steps=0",
    ]


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def logged_steps(run_dir: Path) -> list[int]:
    state = json.loads((Path(latest_checkpoint(run_dir)) / "trainer_state.json").read_text())
    return [entry["step"] for entry in state["log_history"] if "reward" in entry]


def adapter_shapes(run_dir: Path) -> dict:
    return {name: tuple(t.shape) for name, t in load_file(run_dir / "final" / "adapter_model.safetensors").items()}


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_end_as_an_uninterrupted_one(tiny_checkpoint, tmp_path):
    steps = 40
    whole, interrupted = tmp_path / "whole", tmp_path / "interrupted"
    assert start_cli(cli_overrides(tiny_checkpoint, whole, steps)).wait(timeout=300) == 0

    process = start_cli(cli_overrides(tiny_checkpoint, interrupted, steps))
    wait_for(interrupted / "checkpoint-2" / "trainer_state.json", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (interrupted / "final").exists()

    resumed = start_cli([*cli_overrides(tiny_checkpoint, interrupted, steps), f"resume={interrupted}"])
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert "resuming from" in output
    assert logged_steps(interrupted) == logged_steps(whole) == list(range(1, steps + 1))
    assert adapter_shapes(interrupted) == adapter_shapes(whole)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_adapter(tiny_checkpoint, tmp_path):
    process = start_cli(cli_overrides(tiny_checkpoint, tmp_path, steps=2000))
    wait_for(tmp_path / "checkpoint-2" / "trainer_state.json", process)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "SIGTERM received" in output and "continue with resume=" in output
    last = Path(latest_checkpoint(tmp_path))
    assert int(last.name.split("-")[1]) < 2000  # stopped early, at a saved step
    assert (tmp_path / "final" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_a_signal_stops_the_whole_sweep_after_saving_the_job_it_hit(tiny_checkpoint, tmp_path):
    job_settings = [
        o
        for o in cli_overrides(tiny_checkpoint, tmp_path, steps=2000)
        if not o.startswith(("trainer.output_dir", "hydra.run"))
    ]
    sweep = tmp_path / "sweep"
    process = start_cli(
        ["-m", *job_settings, "seed=1,2", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}"]
    )
    wait_for(sweep / "0" / "checkpoint-2" / "trainer_state.json", process)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0 and "SIGTERM received: the sweep stops here" in output, output
    assert (sweep / "0" / "final" / "adapter_model.safetensors").is_file()  # the job it hit saved its work
    assert not (sweep / "1").exists()  # and the next one never started


@pytest.mark.slow
def test_same_seed_same_rewards(tiny_checkpoint, tmp_path):
    def rewards(run_dir):
        trainer = train(compose_config(*tiny_overrides(tiny_checkpoint, run_dir, steps=3), DIGIT_REWARD))
        return [(e["reward"], e["rewards/digits/mean"]) for e in trainer.state.log_history if "reward" in e]

    first, second = rewards(tmp_path / "a"), rewards(tmp_path / "b")
    assert len(first) == 3 and first == second


@pytest.mark.slow
def test_run_dir_records_config_versions_and_commit(tiny_checkpoint, tmp_path):
    train(compose_config(*tiny_overrides(tiny_checkpoint, tmp_path, steps=1), DIGIT_REWARD))
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["packages"]["trl"] and info["packages"]["torch"]
    assert "git_commit" in info and info["command"]
    assert "num_generations: 2" in (tmp_path / "resolved_config.yaml").read_text()


def test_credentials_in_config_are_refused_before_anything_is_written(tiny_checkpoint, tmp_path):
    cfg = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "run"), "trainer.hub_token=hf_secret123")
    with pytest.raises(ConfigError, match="trainer.hub_token: credentials are never written"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_resume_skips_checkpoints_cut_off_mid_write(tmp_path):
    for step in (2, 4, 6):
        (tmp_path / f"checkpoint-{step}").mkdir()
    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert find_checkpoint(str(tmp_path), tmp_path) == str(tmp_path / "checkpoint-4")
    assert find_checkpoint("auto", tmp_path / "fresh") is None
    assert find_checkpoint(None, tmp_path) is None
    with pytest.raises(ConfigError, match="not a complete checkpoint"):
        find_checkpoint(str(tmp_path / "checkpoint-6"), tmp_path)
    with pytest.raises(ConfigError, match="no such run dir"):
        find_checkpoint(str(tmp_path / "nope"), tmp_path)


@pytest.mark.slow
def test_credentials_from_the_environment_never_reach_the_run_dir(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("HF_TOKEN", "hf_secretTokenValue987")
    overrides = tiny_overrides(tiny_checkpoint, tmp_path, steps=1)
    train(compose_config(*overrides, DIGIT_REWARD, "logger=wandb", "logger.wandb.mode=offline"))
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) > 10
    for path in files:
        content = path.read_bytes()
        assert b"wandb-secret-0123" not in content and b"hf_secretTokenValue987" not in content, path


def recorded_run(tmp_path: Path, *overrides: str) -> Path:
    """A run dir as a first start leaves it: its resolved config and one complete checkpoint."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoint-2").mkdir(parents=True)
    (run_dir / "checkpoint-2" / "trainer_state.json").write_text("{}")
    cfg = compose_config("dataset=arithmetic", f"trainer.output_dir={run_dir}", *overrides)
    (run_dir / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return run_dir


@pytest.mark.parametrize(
    "override, key",
    [
        ("trainer.num_generations=5", "trainer.num_generations: 10 -> 5"),
        ("model.lora.r=8", "model.lora.r: 16 -> 8"),
        ("reward.format.weight=2", "reward.format.weight: 0.5 -> 2"),
        ("dataset.max_operand=50", "dataset.max_operand: 20 -> 50"),
        ("filter_groups=true", "filter_groups: False -> True"),
    ],
)
def test_resume_refuses_settings_the_checkpoint_was_not_trained_under(tmp_path, override, key):
    run_dir = recorded_run(tmp_path)
    changed = compose_config("dataset=arithmetic", f"trainer.output_dir={run_dir}", override)
    with pytest.raises(ConfigError, match=re.escape(key)):
        changes_on_resume(run_dir, changed, allow_changes=False)
    assert key.split(":")[0] in changes_on_resume(run_dir, changed, allow_changes=True)


def test_resume_allows_harmless_changes(tmp_path):
    run_dir = recorded_run(tmp_path)
    same = compose_config("dataset=arithmetic", f"trainer.output_dir={run_dir}")
    assert changes_on_resume(run_dir, same, allow_changes=False) == {}
    longer = compose_config("dataset=arithmetic", f"trainer.output_dir={run_dir}", "trainer.max_steps=200")
    assert changes_on_resume(run_dir, longer, allow_changes=False) == {"trainer.max_steps": [-1, 200]}
