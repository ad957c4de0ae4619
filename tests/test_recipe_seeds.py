"""scripts/recipe_seeds.py: a recipe on two seeds (tiny model) gives one table row per seed from each run's report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DIGIT_REWARD, tiny_overrides

pytestmark = pytest.mark.slow  # every test here starts processes or trains

ROOT = Path(__file__).resolve().parents[1]


def test_recipe_table_over_seeds(tiny_checkpoint, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_checkpoint, tmp_path) if not o.startswith("trainer.output_dir")]
    command = [sys.executable, str(ROOT / "scripts" / "recipe_seeds.py"), "--seeds", "3", "4", "--out", str(tmp_path / "r"),
               "--", *overrides, DIGIT_REWARD, "eval.examples=3"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "tests"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    result = json.loads((tmp_path / "r" / "recipe.json").read_text())
    assert [row["seed"] for row in result["rows"]] == [3, 4]
    for row in result["rows"]:
        comparison = json.loads((tmp_path / "r" / f"seed-{row['seed']}" / "eval" / "comparison.json").read_text())
        assert row["base_accuracy"] == comparison["base"]["accuracy"]
        assert row["fixed"] == comparison["outcomes"]["fixed"] and row["wall_s"] > 0
    table = (tmp_path / "r" / "recipe.md").read_text()
    assert "| seed | status | base acc | trained acc | gain | fixed | broken | wall time (s) |" in table
    assert "| mean | 2/2 |" in table and table in done.stdout


def test_a_failing_seed_is_a_failed_row(tiny_checkpoint, tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "recipe_seeds.py"), "--seeds", "1", "--out", str(tmp_path),
               "--", f"model.id={tiny_checkpoint}", "model.gguf=null", "dataset=arithmetic", "trainer.bogus=1"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert done.returncode == 1
    row = json.loads((tmp_path / "recipe.json").read_text())["rows"][0]
    assert row["status"] == "failed" and "trainer.bogus" in row["error"]
