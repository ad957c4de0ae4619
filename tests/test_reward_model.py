"""The reward-model preset (`reward=rm_ensemble`): a tiny random reward model built here drives it end to end; the
fallback when the model cannot be loaded; batched scoring; and the open-ended prompt datasets."""

import json
import logging
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import compose_config, tiny_overrides
from omegaconf import OmegaConf
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from grpo.data import build_dataset
from grpo.data.instructions import load_hub_prompts, load_instructions
from grpo.errors import ConfigError
from grpo.rewards import RewardModelReward, prompt_text
from grpo.rewards.build import build_rewards
from grpo.train import train

ROOT = Path(__file__).resolve().parents[1]
MISSING_RM = "/no/such/reward-model"


@pytest.fixture(scope="session")
def tiny_reward_models(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """Random one-label reward models with the tiny policy's character tokenizer: a DeBERTa-v2 (the default reward
    model's architecture, scoring from the first token) and a Llama (scoring from the last real token)."""
    import torch
    from transformers import (
        AutoTokenizer,
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        LlamaConfig,
        LlamaForSequenceClassification,
    )

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    sizes = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    shared = {"vocab_size": len(tokenizer), "num_labels": 1, "pad_token_id": tokenizer.pad_token_id}
    models = {
        "deberta": DebertaV2ForSequenceClassification(DebertaV2Config(**sizes, **shared, initializer_range=0.2)),
        "llama": LlamaForSequenceClassification(LlamaConfig(**sizes, **shared, num_key_value_heads=2)),
    }
    folders = {}
    torch.manual_seed(0)
    for name, model in models.items():
        folders[name] = tmp_path_factory.mktemp(f"tiny-rm-{name}")
        model.save_pretrained(folders[name])
        tokenizer.save_pretrained(folders[name])
    return folders


def rm_overrides(checkpoint: Path, output_dir: Path, reward_model: str, steps: int = 2) -> list[str]:
    """The tiny run, on the embedded instructions with the rm_ensemble rewards."""
    tiny = [o for o in tiny_overrides(checkpoint, output_dir, steps) if not o.startswith("dataset")]
    return tiny + [
        "dataset=instructions",
        "dataset.limit=8",
        "dataset.max_completion_length=8",
        "reward=rm_ensemble",
        f"reward.reward_model.fn.model={reward_model}",
        "reward.length.fn.min_length=2",
        "reward.length.fn.max_length=6",
        "reward.length.fn.tolerance=2",
    ]


def tensorboard_scalars(run_dir: Path) -> set[str]:
    tags = set()
    for events in run_dir.glob("runs/*/events.out.tfevents.*"):
        tags |= set(EventAccumulator(str(events.parent), size_guidance={"scalars": 0}).Reload().Tags()["scalars"])
    return tags


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_rm_ensemble_trains_end_to_end(tiny_checkpoint, tiny_reward_models, tmp_path):
    cfg = compose_config(*rm_overrides(tiny_checkpoint, tmp_path, str(tiny_reward_models["deberta"])))
    trainer = train(cfg)

    adapter = load_file(tmp_path / "final" / "adapter_model.safetensors")
    assert all(tensor.abs().sum() > 0 for name, tensor in adapter.items() if "lora_B" in name)
    history = [entry for entry in trainer.state.log_history if "rewards/reward_model/mean" in entry]
    assert len(history) == 2
    for entry in history:
        assert 0 < entry["rewards/reward_model/mean"] < 1  # sigmoid-normalised
        assert 0 < entry["rewards/length/mean"] <= 1
        assert 0 <= entry["rewards/safety/mean"] <= 1
        assert "reward_model/raw_mean" in entry
    tags = tensorboard_scalars(tmp_path)
    for name in ["reward_model", "length", "safety"]:
        assert f"train/rewards/{name}/mean" in tags and f"train/rewards/{name}/std" in tags
    assert "train/reward_model/raw_mean" in tags


@pytest.mark.slow
def test_missing_reward_model_falls_back_and_trains(tiny_checkpoint, tmp_path, caplog):
    cfg = compose_config(*rm_overrides(tiny_checkpoint, tmp_path, MISSING_RM, steps=1))
    with caplog.at_level(logging.WARNING, logger="grpo.rewards.build"):
        trainer = train(cfg)

    warnings = [r.getMessage() for r in caplog.records if r.name == "grpo.rewards.build"]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert MISSING_RM in warnings[0] and "no such folder" in warnings[0] and "repetition (weight 1)" in warnings[0]
    logged = trainer.state.log_history[0]
    assert {"rewards/repetition/mean", "rewards/length/mean", "rewards/safety/mean"} <= set(logged)
    assert "rewards/reward_model/mean" not in logged


def test_on_unavailable_error_stops_before_training(tiny_checkpoint, tmp_path):
    cfg = compose_config(
        *rm_overrides(tiny_checkpoint, tmp_path, MISSING_RM), "reward.reward_model.on_unavailable=error"
    )
    with pytest.raises(ConfigError, match=f"reward.reward_model: reward model {MISSING_RM}: no such folder. .*"
                                          "reward.reward_model.on_unavailable=fallback"):
        train(cfg)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "final").exists()


@pytest.mark.parametrize(
    "mode, expected, unexpected",
    [
        # error: one line from grpo.train, exit code 1, before anything loads
        ("error", f"error: reward.reward_model: reward model {MISSING_RM}: no such folder", "WARNING"),
        # fallback: one warning line; this run then stops at an impossible batch, still before the policy loads
        ("fallback", f"reward.reward_model is unavailable: reward model {MISSING_RM}: no such folder. "
                     "Training with its fallback instead: repetition (weight 1).", "error: reward"),
    ],
)
@pytest.mark.slow
def test_cli_reports_an_unavailable_reward_model_in_one_line(mode, expected, unexpected, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "grpo.train", "reward=rm_ensemble", "dataset=instructions",
         f"reward.reward_model.fn.model={MISSING_RM}", f"reward.reward_model.on_unavailable={mode}",
         "trainer.num_generations=3", "trainer.per_device_train_batch_size=4", f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert output.count(expected) == 1, output
    assert unexpected not in output and "Traceback" not in output


@pytest.mark.slow
def test_weights_sweep_as_a_multirun(tiny_checkpoint, tiny_reward_models, tmp_path):
    overrides = [o for o in rm_overrides(tiny_checkpoint, tmp_path, str(tiny_reward_models["deberta"]), steps=1)
                 if not o.startswith("trainer.output_dir")]  # each job writes to its own sweep dir
    result = subprocess.run(
        [sys.executable, "-m", "grpo.train", "-m", *overrides, "reward.length.weight=0.1,0.3",
         f"hydra.sweep.dir={tmp_path}/sweep", "hydra.sweep.subdir=${hydra.job.num}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for job, weight in [(tmp_path / "sweep" / "0", 0.1), (tmp_path / "sweep" / "1", 0.3)]:
        assert OmegaConf.load(job / "resolved_config.yaml").reward.length.weight == weight
        assert "train/rewards/length/mean" in tensorboard_scalars(job)


# ---------------------------------------------------------------- the preset and its checks


def test_fallback_can_be_the_math_rewards(tmp_path):
    cfg = compose_config(
        "reward=rm_ensemble",
        f"reward.reward_model.fn.model={MISSING_RM}",
        "reward.reward_model.fallback.repetition=null",
        "+reward.reward_model.fallback.format={weight: 0.5, fn: "
        "{_target_: grpo.rewards.format_reward, _partial_: true}}",
        "+reward.reward_model.fallback.accuracy={weight: 1, fn: "
        "{_target_: grpo.rewards.accuracy_reward, _partial_: true}}",
        f"trainer.output_dir={tmp_path}",
    )
    rewards = build_rewards(cfg.reward)
    assert {name: reward.weight for name, reward in rewards.items()} == {
        "format": 0.5, "accuracy": 1.0, "length": 0.2, "safety": 0.5,
    }


def test_preset_weights_are_overridable(tiny_reward_models, tmp_path):
    cfg = compose_config(
        "reward=rm_ensemble",
        f"reward.reward_model.fn.model={tiny_reward_models['deberta']}",
        "reward.length.weight=0.3",
        "reward.safety=null",
        f"trainer.output_dir={tmp_path}",
    )
    rewards = build_rewards(cfg.reward)
    assert {name: reward.weight for name, reward in rewards.items()} == {"reward_model": 1.0, "length": 0.3}
    assert isinstance(rewards["reward_model"].function, RewardModelReward)
    assert rewards["reward_model"].__name__ == "reward_model"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["reward.reward_model.fn.normalize=zscore"], r"reward.reward_model.fn.normalize='zscore': choose one of"),
        (["reward.reward_model.fn.input_format=concat"], r"reward.reward_model.fn.input_format='concat'"),
        (["reward.reward_model.fn.input_format=template", "reward.reward_model.fn.template='{completion}'"],
         r"reward.reward_model.fn.template='{completion}': needs exactly the fields"),
        (["reward.reward_model.fn.batch_size=0"], "reward.reward_model.fn.batch_size=0"),
        (["+reward.reward_model.fn.threshold=nan"], r"reward.reward_model.fn.threshold=nan: a raw score"),
        (["reward.reward_model.fn.normalize=threshold"],  # a model no grpo.train_rm calibrated
         r"reward.reward_model.fn.normalize=threshold: .* carries no calibrated threshold .*fn.threshold=<raw score>"),
        (["reward.reward_model.on_unavailable=retry"], r"reward.reward_model.on_unavailable='retry'"),
        (["reward.reward_model.fallback=null"], r"reward.reward_model.on_unavailable=fallback needs .*fallback"),
        (["+reward.reward_model.fallback.length={weight: 1, fn: {_target_: grpo.rewards.length_reward, "
          "_partial_: true}}"], r"reward.reward_model.fallback.length: 'length' is already a reward name"),
        (["+reward.reward_model.retries=3"], r"reward.reward_model.retries: unknown key"),
        (["reward.reward_model.fallback.repetition.weight=high"],  # found before the model is even tried
         r"reward.reward_model.fallback.repetition.weight='high' is not a finite number"),
        (["reward.safety.fn.classifier=null"], r"reward.safety.fn.classifier=null with an empty blocklist"),
        (["reward.safety.fn.classifier=detoxify"], r"reward.safety.fn.classifier='detoxify'"),
    ],
)
def test_bad_settings_are_refused_with_their_key(overrides, message, tiny_reward_models, tmp_path):
    cfg = compose_config(
        "reward=rm_ensemble", f"reward.reward_model.fn.model={tiny_reward_models['deberta']}", *overrides,
        f"trainer.output_dir={tmp_path}",
    )
    with pytest.raises(ConfigError, match=message):
        build_rewards(cfg.reward)


def test_a_classifier_with_several_labels_is_not_a_reward_model(tiny_checkpoint, tmp_path):
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2ForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    config = DebertaV2Config(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=16, num_labels=2)
    DebertaV2ForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    cfg = compose_config("reward=rm_ensemble", f"reward.reward_model.fn.model={tmp_path}", "trainer.output_dir=unused")
    with pytest.raises(ConfigError, match=r"reward.reward_model.fn.model=.* has 2 output labels"):
        build_rewards(cfg.reward)


# ---------------------------------------------------------------- scoring


def chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


PROMPTS = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}] for q in
           ["Write a haiku.", "Why is the sky blue?", "Hi", "List three fruits.", "?", "Explain GRPO.", "Name a cat."]]
COMPLETIONS = [chat(c) for c in
               ["Snow on quiet roofs", "Rayleigh scattering of sunlight by air molecules.", "", "apple, pear, plum",
                "x" * 200, "Group relative policy optimisation compares each sample with its group.", "Tom"]]


@pytest.mark.parametrize("architecture", ["deberta", "llama"])
@pytest.mark.parametrize("input_format", ["pair", "chat", "template"])
def test_batched_scores_equal_one_by_one(architecture, input_format, tiny_reward_models):
    settings = {"model": str(tiny_reward_models[architecture]), "input_format": input_format, "normalize": "none"}
    one_by_one = RewardModelReward(batch_size=1, **settings)(COMPLETIONS, prompts=PROMPTS)
    batched = RewardModelReward(batch_size=4, **settings)(COMPLETIONS, prompts=PROMPTS)  # batches of 4 and 3
    assert batched == pytest.approx(one_by_one, abs=1e-5)
    assert len(set(one_by_one)) > 1  # the pairs really differ to the model


class OutOfMemoryAbove:
    """A reward model's forward that runs out of memory on batches larger than `limit` (or on every batch)."""

    def __init__(self, model, limit: int):
        self.model, self.limit, self.batches = model, limit, []

    def __call__(self, **inputs):
        import torch

        rows = len(inputs["input_ids"])
        if rows > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        self.batches.append(rows)
        return self.model(**inputs)


def test_out_of_memory_halves_the_batch_and_gives_the_same_scores(tiny_reward_models, caplog):
    settings = {"model": str(tiny_reward_models["deberta"]), "normalize": "none"}
    expected = RewardModelReward(batch_size=7, **settings)(COMPLETIONS, prompts=PROMPTS)
    reward = RewardModelReward(batch_size=8, **settings)
    reward.model = OutOfMemoryAbove(reward.model, limit=2)
    with caplog.at_level(logging.WARNING):
        assert reward(COMPLETIONS, prompts=PROMPTS) == pytest.approx(expected, abs=1e-5)
    assert reward.batch_size == 2 and reward.model.batches == [2, 2, 2, 1]
    assert "ran out of memory; scoring 2 pairs per pass" in caplog.text

    reward.model = OutOfMemoryAbove(reward.model.model, limit=0)
    with pytest.raises(RuntimeError, match="ran out of memory scoring one completion on cpu; lower reward.<name>.fn.max_length"):
        reward(COMPLETIONS, prompts=PROMPTS)


def test_normalizations(tiny_reward_models):
    model = str(tiny_reward_models["deberta"])
    raw = RewardModelReward(model, normalize="none")(COMPLETIONS, prompts=PROMPTS)
    sigmoid = RewardModelReward(model, normalize="sigmoid")(COMPLETIONS, prompts=PROMPTS)
    assert all(0 < s < 1 for s in sigmoid) and sorted(range(7), key=raw.__getitem__) == sorted(
        range(7), key=sigmoid.__getitem__
    )

    running = RewardModelReward(model, normalize="running")
    first = running(COMPLETIONS[:4], prompts=PROMPTS[:4])
    assert statistics.fmean(first) == pytest.approx(0, abs=1e-9) and statistics.pstdev(first) == pytest.approx(1)
    second = running(COMPLETIONS[4:], prompts=PROMPTS[4:])
    mean, std = statistics.fmean(raw), statistics.pstdev(raw)  # every score seen so far
    assert second == pytest.approx([(x - mean) / std for x in raw[4:]], abs=1e-5)

    middle = statistics.median(raw)
    verdicts = RewardModelReward(model, normalize="threshold", threshold=middle)(COMPLETIONS, prompts=PROMPTS)
    assert verdicts == [1.0 if x > middle else 0.0 for x in raw] and 0 < sum(verdicts) < 7


def test_a_threshold_stored_in_the_model_config_is_used_unless_one_is_given(tiny_reward_models, tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from grpo.rewards.reward_model import THRESHOLD_CONFIG_KEY

    source, folder = tiny_reward_models["llama"], tmp_path / "calibrated"
    AutoModelForSequenceClassification.from_pretrained(source).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    config = AutoConfig.from_pretrained(folder)
    setattr(config, THRESHOLD_CONFIG_KEY, 0.25)
    config.save_pretrained(folder)
    assert RewardModelReward(str(folder), normalize="threshold").threshold == 0.25
    assert RewardModelReward(str(folder), normalize="threshold", threshold=-1.0).threshold == -1.0


def test_missing_prompts_and_odd_completions_still_score(tiny_reward_models):
    scores = RewardModelReward(str(tiny_reward_models["llama"]))(["plain text", chat(None), None])
    assert len(scores) == 3 and all(0 < s < 1 for s in scores)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("plain prompt", "plain prompt"),
        (PROMPTS[0], "Write a haiku."),
        ([{"role": "user", "content": "example"}, {"role": "assistant", "content": "x"},
          {"role": "user", "content": "the real one"}], "the real one"),
        ([{"role": "system", "content": "only system"}], ""),
        (None, ""),
        ([{"role": "user", "content": [{"type": "text", "text": "multi"}, {"type": "image"}]}], "multi"),
    ],
)
def test_prompt_text_is_the_last_user_turn(prompt, expected):
    assert prompt_text(prompt) == expected


# ---------------------------------------------------------------- the open-ended prompt datasets


def test_embedded_instructions_build_a_prompt_dataset_without_answers():
    cfg = compose_config("dataset=instructions", "mode=full", "trainer.output_dir=unused")
    rows = build_dataset(cfg.dataset)
    assert set(rows.column_names) == {"prompt"}
    questions = [row["prompt"][-1]["content"] for row in rows]
    assert len(questions) >= 50 and len(set(questions)) == len(questions)
    assert rows[0]["prompt"][0]["role"] == "system"


def test_local_prompt_file_and_its_errors(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"question": "Tell a joke.", "source": "me"}) + "\n\n" + json.dumps({"question": "Hi"}))
    assert load_instructions(str(path))["question"] == ["Tell a joke.", "Hi"]
    assert load_hub_prompts(str(path), "unused/hub-id", None, "train", "prompt")["question"] == ["Tell a joke.", "Hi"]
    for content, message in [
        ('{"question": "a"}\n{"prompt": "b"}\n', r"line 2 lacks the field\(s\) \['question'\]"),
        ('{"question": "a"}\nnot json\n', "line 2 is not valid JSON"),
        ('{"question": "  "}\n', "row 1 has no text in 'question'"),
        ("", "the file is empty"),
    ]:
        path.write_text(content)
        with pytest.raises(ConfigError, match=message):
            load_instructions(str(path))


def test_hub_prompts_offline_names_the_alternatives():
    cfg = compose_config("dataset=hub_prompts", "trainer.output_dir=unused")
    with pytest.raises(ConfigError, match=r"dataset.hub_id=HuggingFaceH4/no_robots .*dataset=instructions"):
        build_dataset(cfg.dataset)
