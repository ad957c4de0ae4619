"""grpo.train_rm: the tiny model samples, the rules label, RewardTrainer trains a reward model that grpo.train then
loads as `reward=verifier`; a reward model trained on pairs ranks held-out pairs better than chance."""

import importlib.util
import json
import math
import random
import re
from pathlib import Path

import pytest
from conftest import CONF_DIR, DIGIT_REWARD, compose_config, tiny_overrides
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from grpo.errors import ConfigError
from grpo.rewards import RewardModelReward
from grpo.rewards.build import build_rewards
from grpo.train import train
from grpo.train_rm import train_reward_model
from grpo.verifier.pairs import pairs_of, read_pairs, split_by_prompt

ROOT = Path(__file__).resolve().parents[1]


def compose_rm(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose(config_name="train_rm", overrides=list(overrides))


def tiny_rm(checkpoint: Path, output_dir: Path, *overrides: str) -> list[str]:
    """Tiny backbone, a few prompts, short answers, a few steps: seconds on a CPU."""
    return [
        f"model.id={checkpoint}", "model.gguf=null", "model.lora.target_modules=[q_proj,v_proj]",
        "dataset.size=20", "dataset.max_completion_length=8", "rm.prompts=12", "rm.samples_per_prompt=4",
        "rm.batch_size=16", "trainer.per_device_train_batch_size=4", "trainer.logging_steps=1", "trainer.eval_steps=2",
        "+trainer.bf16=false", f"trainer.output_dir={output_dir}", "logger=tensorboard", *overrides,
    ]


@pytest.fixture(scope="module")
def tiny_verifier(tiny_checkpoint, tmp_path_factory) -> Path:
    """A reward model trained from the tiny policy's own samples, labelled by a reward that varies on random text."""
    run_dir = tmp_path_factory.mktemp("rm-run")
    cfg = compose_rm(*tiny_rm(tiny_checkpoint, run_dir, DIGIT_REWARD))
    result = train_reward_model(cfg)
    assert result["train_pairs"] > 0 and result["heldout_pairs"] > 0
    return run_dir


@pytest.mark.slow
def test_sampled_pairs_train_a_reward_model_that_is_saved_with_its_accuracy(tiny_verifier):
    pairs = [json.loads(line) for line in (tiny_verifier / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(set(pair) == {"prompt", "chosen", "rejected", "origin"} for pair in pairs)
    assert {pair["origin"] for pair in pairs} == {"sampled"}  # random text has no answer to swap
    assert all(pair["chosen"] != pair["rejected"] for pair in pairs)
    assert all(pair["prompt"].startswith("What is") for pair in pairs)  # the question, not the few-shot turns
    result = json.loads((tiny_verifier / "rm_eval.json").read_text())
    assert 0.0 <= result["heldout_accuracy"] <= 1.0 and math.isfinite(result["heldout_margin"])
    folder = tiny_verifier / "reward_model"
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"] and len(config["id2label"]) == 1
    assert not (folder / "adapter_config.json").exists()  # LoRA merged in: a plain model any loader reads
    assert (folder / "tokenizer_config.json").is_file()
    assert list((tiny_verifier / "runs" / "reward_model").glob("events.out.tfevents.*")), "TensorBoard curves"


@pytest.mark.slow
def test_the_trained_reward_model_drives_a_grpo_run_as_reward_verifier(tiny_verifier, tiny_checkpoint, tmp_path):
    folder = tiny_verifier / "reward_model"
    overrides = [
        *tiny_overrides(tiny_checkpoint, tmp_path), "reward=verifier", f"reward.reward_model.fn.model={folder}",
        "reward.reward_model.fn.batch_size=2",
        "reward.reward_model.fn.threshold=0.0",  # the tiny policy is never right: train_rm had nothing to calibrate
    ]
    rewards = build_rewards(compose_config(*overrides).reward)
    function, weight = rewards["reward_model"], rewards["reward_model"].weight
    answers = ("3", "<answer>3</answer>")
    scores = function(prompts=[[{"role": "user", "content": "What is 1 + 2?"}]] * 2,
                      completions=[[{"role": "assistant", "content": text}] for text in answers])
    raw = function.function.score([("What is 1 + 2?", text) for text in answers])
    assert weight == 1.0 and scores == [1.0 if score > 0.0 else 0.0 for score in raw]  # a verdict, paid like accuracy
    assert rewards["accuracy"].weight == 0.0  # logged and evaluated, never paid
    trainer = train(compose_config(*overrides))
    assert any("rewards/reward_model/mean" in entry for entry in trainer.state.log_history)


@pytest.mark.slow
def test_a_reward_model_trained_on_pairs_ranks_held_out_pairs_better_than_chance(tiny_checkpoint, tmp_path):
    # The chosen answer says "yes", the rejected one "no": a pattern a tiny model learns in a few dozen steps.
    rng = random.Random(0)
    lines = []
    for index in range(60):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        lines.append({"prompt": f"What is {a} + {b}? ({index})", "chosen": f"{a + b} yes", "rejected": f"{a + b} no"})
    pairs_file, answers_file = tmp_path / "pairs.jsonl", tmp_path / "answers.jsonl"
    pairs_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    answers = [{"prompt": line["prompt"], "completion": line[side], "correct": side == "chosen"}
               for line in lines for side in ("chosen", "rejected")]  # fmt: skip
    answers_file.write_text("".join(json.dumps(answer) + "\n" for answer in answers))
    cfg = compose_rm(*tiny_rm(
        tiny_checkpoint, tmp_path / "run", f"rm.pairs={pairs_file}", f"rm.answers={answers_file}",
        "rm.heldout_fraction=0.25", "trainer.learning_rate=5e-3", "trainer.num_train_epochs=3", "model.lora=null",
    ))
    result = train_reward_model(cfg)
    assert result["heldout_pairs"] == 15
    assert result["heldout_accuracy"] >= 0.8, result  # chance is 0.5
    # Calibrated on the 120 answers, the verifier's verdict tells "yes" from "no" as a right/wrong reward, on the
    # problems it never saw too.
    assert result["threshold_answers"] == 120
    assert result["heldout_right_called_right"] >= 0.8 and result["heldout_wrong_called_wrong"] >= 0.8, result
    verdict = RewardModelReward(model=result["model"], input_format="chat", normalize="threshold")
    assert verdict.threshold == result["threshold"]
    assert verdict(prompts=[[{"role": "user", "content": "What is 30 + 3? (99)"}]] * 2,
                   completions=[[{"role": "assistant", "content": text}] for text in ("33 yes", "33 no")]) == [1.0, 0.0]


def test_pairs_keep_only_strictly_better_answers_and_hold_out_whole_prompts():
    answers = [{"completion": "a", "reward": 1.5}, {"completion": "b", "reward": 0.5}, {"completion": "a", "reward": 1.5},
               {"completion": "c", "reward": 0.5}]
    pairs = pairs_of("q", answers, limit=10, rng=random.Random(0))
    assert sorted((p["chosen"], p["rejected"]) for p in pairs) == [("a", "b"), ("a", "c")]  # ties and repeats: none
    assert len(pairs_of("q", answers, limit=1, rng=random.Random(0))) == 1
    many = [{"prompt": f"q{i % 10}", "chosen": "x", "rejected": "y"} for i in range(40)]
    train_pairs, held_out = split_by_prompt(many, 0.2, seed=0)
    assert len({p["prompt"] for p in held_out}) == 2
    assert not {p["prompt"] for p in held_out} & {p["prompt"] for p in train_pairs}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["rm.samples_per_prompt=1"], "rm.samples_per_prompt=1: must be a whole number, at least 2"),
        (["rm.answer_swaps=-1"], "rm.answer_swaps=-1: must be a whole number, at least 0"),
        (["rm.heldout_fraction=1.5"], "rm.heldout_fraction=1.5"),
        (["rm.temperature=0"], "rm.temperature=0"),
        (["rm.pairs=/no/such/pairs.jsonl"], "rm.pairs=/no/such/pairs.jsonl: no such file"),
        (["rm.answers=/no/such/answers.jsonl"], "rm.answers=/no/such/answers.jsonl: no such file"),
        (["+reward.format.fn.strict=true"], "reward.format.fn.strict: grpo.rewards.format.format_reward has no argument"),
    ],
)
def test_bad_settings_are_refused_before_anything_loads(overrides, message, tmp_path, monkeypatch):
    import grpo.models.load

    monkeypatch.setattr(grpo.models.load, "resolve_checkpoint", lambda cfg: pytest.fail("reached the model"))
    with pytest.raises(ConfigError, match=re.escape(message)):
        train_reward_model(compose_rm(f"trainer.output_dir={tmp_path}", *overrides))


def test_an_answer_file_without_a_pair_file_is_refused_not_ignored(tmp_path):
    answers_file = tmp_path / "answers.jsonl"
    answers_file.write_text('{"prompt": "q", "completion": "a", "correct": true}\n')
    with pytest.raises(ConfigError, match=r"rm.answers=.*read only with rm.pairs=FILE"):
        train_reward_model(compose_rm(f"trainer.output_dir={tmp_path}", f"rm.answers={answers_file}"))


def test_a_pair_file_with_a_missing_field_names_the_line(tmp_path):
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "a"}\n')
    with pytest.raises(ConfigError, match=r"rm.pairs=.*line 2 lacks the field\(s\) \['rejected'\]") as refused:
        train_reward_model(compose_rm(f"trainer.output_dir={tmp_path}", f"rm.pairs={pairs_file}"))
    assert "bad_rows" not in str(refused.value)  # a dataset option: no use for a pair file
    pairs_file.write_text('{"prompt": "q", "chosen": " ", "rejected": "b"}\n')
    with pytest.raises(ConfigError, match=r"line 1 has no text in 'chosen'"):
        train_reward_model(compose_rm(f"trainer.output_dir={tmp_path}", f"rm.pairs={pairs_file}"))


def test_a_pair_file_keeps_the_origin_train_rm_wrote_and_nothing_else(tmp_path):
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text(
        '{"prompt": "q", "chosen": "a", "rejected": "b", "origin": "swapped", "note": "x"}\n'
        '{"prompt": "q", "chosen": "a", "rejected": "c"}\n'
    )
    assert read_pairs(str(pairs_file)) == [
        {"prompt": "q", "chosen": "a", "rejected": "b", "origin": "swapped"},
        {"prompt": "q", "chosen": "a", "rejected": "c"},
    ]


def test_the_train_rm_config_composes_with_every_key_resolved():
    cfg = compose_rm("trainer.output_dir=/tmp/x")
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container["dataset"]["limit"] == container["rm"]["prompts"]
    assert container["rm"]["max_new_tokens"] == container["dataset"]["max_completion_length"]


def load_probe():
    spec = importlib.util.spec_from_file_location("verifier_probe", ROOT / "scripts" / "verifier_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_probe_pairs_answers_that_differ_only_in_the_number():
    pairs = load_probe().minimal_pairs([("What is 13 * 5?", 65), ("What is 3 - 7?", -4)], seed=0)
    assert [(pair["operator"], pair["error"]) for pair in pairs] == [
        ("*", "one off"), ("*", "2-9 off"), ("*", "ten off"), ("-", "one off"), ("-", "2-9 off"), ("-", "ten off"),
    ]
    assert pairs[0]["right"] == "13 * 5 = 65.\n<answer>65</answer>"
    for pair, size in zip(pairs, (1, (2, 9), 10, 1, (2, 9), 10), strict=True):
        gold, wrong = (int(re.search(r"<answer>(-?\d+)<", pair[key]).group(1)) for key in ("right", "wrong"))
        low, high = size if isinstance(size, tuple) else (size, size)
        assert low <= abs(wrong - gold) <= high
        assert pair["wrong"] == pair["right"].replace(str(gold), str(wrong))


@pytest.mark.slow
def test_the_probe_scores_a_trained_verifier_by_operator_and_error(tiny_verifier):
    result = load_probe().probe(str(tiny_verifier / "reward_model"), [("What is 3 + 4?", 7), ("What is 5 * 2?", 10)])
    assert {group: row["pairs"] for group, row in result.items()} == {
        "all": 6, "+": 3, "*": 3, "one off": 2, "2-9 off": 2, "ten off": 2,
    }
    assert all(0.0 <= row["accuracy"] <= 1.0 for row in result.values())


def test_the_probe_reads_a_runs_groups_for_the_verifiers_agreement_with_accuracy(tmp_path):
    import pandas as pd

    def row(step, question, verifier, accuracy, formatted=1.0):
        prompt = [{"role": "system", "content": "Solve."}, {"role": "user", "content": question}]
        return {"step": step, "prompt": prompt, "reward_model": verifier, "accuracy": accuracy, "format": formatted,
                "advantage": verifier - 0.5}  # fmt: skip

    (tmp_path / "completions").mkdir()
    rows = [
        row(1, "What is 1 + 1?", 0.9, 1.0), row(1, "What is 1 + 1?", 0.2, 0.0), row(1, "What is 1 + 1?", 0.95, 0.0),
        row(1, "What is 1 + 1?", 0.99, 0.0, formatted=0.0),  # unformatted: format's business, not counted
        row(2, "What is 2 + 2?", 0.1, 1.0), row(2, "What is 2 + 2?", 0.8, 0.0),
        row(2, "What is 4 + 4?", 1.0, 1.0), row(2, "What is 4 + 4?", 1.0, 0.0),  # a verdict's tie: not a hit
    ]
    pd.DataFrame(rows).to_parquet(tmp_path / "completions" / "completions_00001.parquet")
    halves = load_probe().training_agreement(tmp_path)
    assert halves["first half"]["pairs"] == 2 and halves["first half"]["agreement"] == 0.5
    assert halves["first half"]["ties"] == 0.0
    assert halves["second half"]["pairs"] == 2 and halves["second half"]["agreement"] == 0.0
    assert halves["second half"]["ties"] == 0.5
    assert halves["second half"]["training accuracy"] == 0.5
    assert halves["first half"]["push without a right answer"] == 0.0  # its one group has a right answer
    # Verdicts at 0.5 over formatted answers: the right one paid 0.9, the wrong ones 0.2 and 0.95 (0.99 unformatted).
    assert (halves["first half"]["right_called_right"], halves["first half"]["wrong_called_wrong"]) == (1.0, 0.5)
    assert (halves["second half"]["right_called_right"], halves["second half"]["wrong_called_wrong"]) == (0.5, 0.0)
    no_right = {**row(2, "What is 3 + 3?", 0.7, 0.0), "advantage": 0.9}
    pd.DataFrame([*rows, no_right]).to_parquet(tmp_path / "completions" / "completions_00001.parquet")
    push = load_probe().training_agreement(tmp_path)["second half"]["push without a right answer"]
    assert push == pytest.approx(0.9 / (0.4 + 0.3 + 0.5 + 0.5 + 0.9))
