"""Data-parallel training: `accelerate launch` with 2 CPU processes (gloo) on the tiny model, as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import DIGIT_REWARD, tiny_overrides

pytestmark = pytest.mark.slow  # every test here starts processes or trains

ROOT = Path(__file__).resolve().parents[1]


def launch(overrides: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file conf/accelerate/ddp_cpu.yaml -m grpo.train ...` in a fresh process."""
    env = {
        **os.environ,
        # One thread per process: two processes that each take every core make a step ~10x slower.
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),  # for DIGIT_REWARD
    }
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "conf/accelerate/ddp_cpu.yaml"),
        "-m", "grpo.train", *overrides,
    ]  # fmt: skip
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_two_processes_train_together_and_rank_zero_writes(tiny_checkpoint, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [*tiny_overrides(tiny_checkpoint, run_dir, steps=2), DIGIT_REWARD, f"hydra.run.dir={run_dir}"]
    done = launch(overrides, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    # Each step's sampled completions are gathered from both ranks: 2 ranks x 1 prompt x a group of 2.
    for step in (1, 2):
        table = pd.read_parquet(run_dir / "completions" / f"completions_{step:05d}.parquet")
        assert len(table) == 4 and table["prompt"].astype(str).nunique() == 2
        assert table["digits"].notna().all()  # every completion was scored, on whichever rank made it

    # One set of checkpoints, written by rank 0; each also holds rank 1's RNG state, so both ranks reached it.
    assert {p.name for p in run_dir.glob("checkpoint-*")} == {"checkpoint-1", "checkpoint-2"}
    for checkpoint in run_dir.glob("checkpoint-*"):
        assert {p.name for p in checkpoint.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
        assert (checkpoint / "adapter_model.safetensors").is_file()
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()

    # TensorBoard events come from rank 0 alone (one file per writer), and no rank wrote anywhere else.
    # runs/train: the Trainer's writer and the custom-scalars layout's, both rank 0's.
    assert len(list((run_dir / "runs" / "train").glob("events.out.tfevents.*"))) == 2
    assert len(list((run_dir / "runs" / "completions").glob("events.out.tfevents.*"))) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    log = (run_dir / "train.log").read_text()
    assert log.count("final model:") == 1 and log.count("dataset:") == 1  # info lines from rank 0 only


def test_a_multi_process_launch_needs_one_named_run_dir(tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "grpo.train", "model=smollm2-135m"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "hydra.run.dir" in done.stderr
    assert not (tmp_path / "outputs").exists()
