"""scripts/benchmark.py runs end to end (tiny model, 2 steps), and the plain TRL script still matches our presets.

No timing is asserted here: speed is measured by running the benchmark itself, never by tests.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here starts processes or trains

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_prints_one_json_line_with_identical_settings(tiny_checkpoint, tmp_path):
    command = [
        sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--model", str(tiny_checkpoint), "--steps", "2",
        "--completions", "2", "--length", "4", "--work-dir", str(tmp_path), "--reference",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])

    for name in ("grpo", "plain_trl", "grpo_as_plain_trl", "reference"):
        run = line["runs"][name]
        assert run["s_per_step"] > 0 and run["peak_rss_mb"] > 0
        assert run["completion_tok_per_s"] > 0
    assert line["grpo_over_plain_trl"] > 0 and line["overhead"] > 0 and line["reference_over_grpo"] > 0
    # If a preset changes (learning rate, beta, LoRA rank, ...), scripts/plain_trl_grpo.py must follow it, or the
    # benchmark would compare different trainings.
    assert line["settings_differ"] == []


def test_generation_benchmark_times_merged_and_unmerged_sampling(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "benchmark_generation.py"), "--completions", "2", "--length", "4",
               "--calls", "1"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["unmerged_s"] > 0 and line["merged_s"] > 0 and line["unmerged_over_merged"] > 0
    assert line["merged_contiguous_head_s"] > 0 and line["unmerged_over_merged_contiguous_head"] > 0


def test_evaluation_benchmark_times_both_models_with_and_without_the_contiguous_head_input():
    command = [sys.executable, str(ROOT / "scripts" / "benchmark_eval.py"), "--problems", "3", "--batch-sizes", "2",
               "--max-new-tokens", "4"]  # fmt: skip
    offline = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=offline)
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["problems"] == 3 and line["batch_2_s"] > 0 and line["batch_2_strided_head_s"] > 0
    assert line["batch_2_strided_head_over_default"] > 0


def test_dtype_benchmark_times_sampling_and_the_backward_pass():
    # Only float32 here: emulated bf16 (a CPU without AVX512-BF16) would cost the suite a minute.
    command = [sys.executable, str(ROOT / "scripts" / "benchmark_dtype.py"), "--completions", "1", "--length", "2",
               "--variants", "float32"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(line["computes_bf16_natively"], bool)
    assert line["float32_generate_s"] > 0 and line["float32_forward_backward_s"] > 0
    assert line["float32_over_float32_generate"] == 1.0
