"""scripts/benchmark.py and scripts/profile_step.py run end to end (tiny model, 2-3 steps), and the plain TRL script
still matches our presets.

No timing is asserted here: speed is measured by running the benchmark itself, never by tests.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import DIGIT_REWARD, tiny_overrides
from omegaconf import OmegaConf

pytestmark = pytest.mark.slow  # every test here starts processes or trains

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_prints_one_json_line_with_identical_settings(tiny_checkpoint, tmp_path):
    command = [
        sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--model", str(tiny_checkpoint), "--steps", "2",
        "--completions", "2", "--length", "4", "--work-dir", str(tmp_path), "--reference", "--without", "shared_prefix",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])

    for name in ("grpo", "plain_trl", "grpo_as_plain_trl", "reference", "no_shared_prefix"):
        run = line["runs"][name]
        assert run["s_per_step"] > 0 and run["peak_rss_mb"] > 0
        assert run["completion_tok_per_s"] > 0
    assert line["grpo_over_plain_trl"] > 0 and line["overhead"] > 0 and line["reference_over_grpo"] > 0
    assert line["no_shared_prefix_over_grpo"] > 0
    # If a preset changes (learning rate, beta, LoRA rank, ...), scripts/plain_trl_grpo.py must follow it, or the
    # benchmark would compare different trainings.
    assert line["settings_differ"] == []


def test_step_profile_splits_a_step_into_its_parts(tiny_checkpoint, tmp_path):
    # Two prompts per step, one generation for two steps: the old policy's forward is timed too.
    overrides = [*tiny_overrides(tiny_checkpoint, tmp_path / "run", steps=3), DIGIT_REWARD,
                 "trainer.per_device_train_batch_size=4", "trainer.steps_per_generation=2"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "tests")}  # for DIGIT_REWARD
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "profile_step.py"), *overrides],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-5000:]
    table = done.stdout[done.stdout.index("steps timed: 2, 3 of 3") :].splitlines()
    seconds = {label.strip(): float(value) for label, value, share in (line.rsplit(maxsplit=2) for line in table[2:])}
    assert list(seconds) == [
        "generation", "prefill", "decode", "other (sampling, adapter merge)", "old-policy forward",
        "reference forward", "rewards", "policy forward (loss)", "policy backward",
        "rest (loss arithmetic, optimizer, data)", "step",
    ]  # fmt: skip
    for part in ("generation", "prefill", "decode", "reference forward", "policy forward (loss)", "policy backward"):
        assert seconds[part] > 0, part
    assert seconds["step"] >= seconds["generation"] + seconds["policy backward"]
    assert not (tmp_path / "outputs").exists()  # its run went to a temporary folder


def test_generation_benchmark_times_merged_and_unmerged_sampling(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "benchmark_generation.py"), "--completions", "2", "--length", "4",
               "--calls", "1"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["unmerged_s"] > 0 and line["merged_s"] > 0 and line["unmerged_over_merged"] > 0
    assert line["merged_contiguous_head_s"] > 0 and line["unmerged_over_merged_contiguous_head"] > 0


def test_evaluation_benchmark_times_both_models_with_and_without_each_decoding_speedup():
    command = [sys.executable, str(ROOT / "scripts" / "benchmark_eval.py"), "--problems", "3", "--batch-sizes", "2",
               "--max-new-tokens", "4"]  # fmt: skip
    offline = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=offline)
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["problems"] == 3 and line["batch_2_s"] > 0 and line["batch_2_strided_head_s"] > 0
    assert line["batch_2_strided_head_over_default"] > 0
    assert line["batch_2_unpacked_s"] > 0 and line["batch_2_unpacked_over_default"] > 0


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="packing applies to bf16 CPUs only")
def test_linear_benchmark_times_each_layer_packed_and_not_and_finds_them_equal():
    command = [sys.executable, str(ROOT / "scripts" / "benchmark_linear.py"), "--rows", "2", "--calls", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["rows"] == 2 and set(line) >= {"q_proj", "gate_proj", "down_proj", "lm_head"}
    assert all(line[name]["bit_exact"] and line[name]["packed_us"] > 0 for name in ("q_proj", "lm_head"))


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


def test_shared_prefix_table_times_gsm8k_prompts_with_worked_example_turns(tiny_checkpoint, gsm8k_file):
    # One cell (no arithmetic group sizes): GSM8K prompts with two worked examples from the file, groups of 2.
    command = [sys.executable, str(ROOT / "scripts" / "shared_prefix_table.py"), "--model", str(tiny_checkpoint),
               "--gsm8k", str(gsm8k_file), "--groups", "--shots", "2", "--shots-group", "2", "--steps", "2",
               "--length", "4"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-5000:]
    header, _rule, *rows = done.stdout.strip().splitlines()
    assert header.startswith("| prompts | prompt tokens | group size |") and len(rows) == 1
    prompts, tokens, group, without, default, speedup = (cell.strip() for cell in rows[0].strip("|").split("|"))
    assert (prompts, group) == ("gsm8k, 2-shot", "2")
    assert float(without) > 0 and float(default) > 0 and speedup.endswith("x")
    # The prompt carries the file's last two rows as worked examples: longer than the question alone.
    assert float(tokens) > len("Tom has 3 apples and buys 4 more. How many?")


def test_benchmark_refuses_gsm8k_shots_without_a_file():
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--shots", "4"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--shots 4: needs --gsm8k" in done.stderr


def test_benchmark_refuses_to_switch_off_a_speedup_that_is_already_off(monkeypatch):
    # `--without` a speed-up the preset leaves off would time two identical runs; every one is on by default today,
    # so the check is shown on a preset with one off.
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    from benchmark import known_speedups

    preset = OmegaConf.create({"speedups": {"shared_prefix": True, "shared_prefill": False}})
    assert known_speedups(["shared_prefix"], preset) == ["shared_prefix"]
    with pytest.raises(SystemExit, match="--without shared_prefill: already off by default"):
        known_speedups(["shared_prefill"], preset)
    with pytest.raises(SystemExit, match="--without prefill: not a speed-up"):
        known_speedups(["prefill"], preset)


def test_the_plain_trl_settings_switch_off_every_speedup():
    sys.path.insert(0, str(ROOT / "scripts"))
    from benchmark import AS_PLAIN_TRL, compose_preset

    speedups = compose_preset().speedups
    assert sorted(AS_PLAIN_TRL) == sorted(f"speedups.{name}=false" for name in speedups)


def test_memory_benchmark_times_trls_log_probabilities_in_both_settings():
    command = [sys.executable, str(ROOT / "scripts" / "benchmark_memory.py"), "--tokens", "8", "--calls", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["default"]["s_per_call"] > 0 and line["keep"]["s_per_call"] > 0 and line["default_over_keep"] > 0


def test_sampling_benchmark_draws_the_same_tokens_both_ways():
    command = [sys.executable, str(ROOT / "scripts" / "benchmark_sampling.py"), "--vocab", "500", "--calls", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-5000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["same_draws"] and line["multinomial_ms"] > 0 and line["vectorised_ms"] > 0
