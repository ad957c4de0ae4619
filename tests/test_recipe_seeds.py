"""scripts/recipe_seeds.py: the seed multirun it launches, its report over two seeds (tiny model), and a refused
override."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import DIGIT_REWARD, tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "recipe_seeds.py"


def load_script():
    spec = importlib.util.spec_from_file_location("recipe_seeds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_multirun_names_job_dirs_by_seed_and_keeps_swept_keys():
    command = load_script().multirun_command([61, 62], ["model=m", "+reward.x=1", "trainer.beta=0,0.04"], Path("o"))
    assert command[1:] == [
        "-m", "grpo.train", "-m", "model=m", "+reward.x=1", "trainer.beta=0,0.04",
        "seed=61,62", "eval.after_training=true", "hydra.sweep.dir=o",
        "hydra.job.config.override_dirname.exclude_keys=[sweep,model,reward.x,eval.after_training]",
    ]  # fmt: skip


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=cwd, check=False)


@pytest.mark.slow
def test_two_seeds_give_one_report_row(tiny_checkpoint, tmp_path):
    overrides = tiny_overrides(tiny_checkpoint, tmp_path, steps=1)
    overrides = [o for o in overrides if not o.startswith("trainer.output_dir")]  # Hydra's job dirs, one per seed
    done = run_script("--seeds", "3", "4", "--out", str(tmp_path / "r"), "--", *overrides, DIGIT_REWARD,
                      "eval.examples=3", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    for seed in (3, 4):
        assert (tmp_path / "r" / f"seed={seed}" / "eval" / "comparison.json").is_file()
    (row,) = (row for _, row in pd.read_csv(tmp_path / "r" / "report.csv").iterrows())
    assert (row.n, row.failed) == (2, 0) and 0 <= row["eval accuracy"] <= 1
    page = (tmp_path / "r" / "report.md").read_text()
    assert "eval accuracy (95% CI)" in page and page in done.stdout


@pytest.mark.slow  # starts grpo.train, which refuses the override before any job
def test_a_refused_override_fails_with_trains_error(tiny_checkpoint, tmp_path):
    done = run_script("--seeds", "1", "--out", str(tmp_path / "r"), "--", f"model.id={tiny_checkpoint}",
                      "model.gguf=null", "dataset=arithmetic", "trainer.bogus=1", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert "trainer.bogus" in done.stderr and not (tmp_path / "r" / "report.md").exists()
