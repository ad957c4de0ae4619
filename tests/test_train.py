"""End-to-end GRPO runs: a tiny random model (seconds) and the embedded SmolLM2-135M (under a minute)."""

import json
from pathlib import Path

import pytest
import torch
from conftest import DIGIT_REWARD, compose_config, tiny_overrides
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import AutoModelForCausalLM

from grpo.errors import ConfigError
from grpo.train import train


def scalars_and_texts(run_dir: Path) -> tuple[set[str], set[str]]:
    scalars, texts = set(), set()
    for events in run_dir.glob("runs/*/events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events.parent), size_guidance={"tensors": 0, "scalars": 0}).Reload()
        scalars |= set(accumulator.Tags()["scalars"])
        texts |= set(accumulator.Tags()["tensors"])
    return scalars, texts


@pytest.mark.slow
def test_tiny_run_trains_lora_only_and_writes_everything(tiny_checkpoint, tmp_path):
    cfg = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path), DIGIT_REWARD)
    trainer = train(cfg)

    adapter = load_file(tmp_path / "final" / "adapter_model.safetensors")
    lora_b = [tensor for name, tensor in adapter.items() if "lora_B" in name]
    assert lora_b and all(tensor.abs().sum() > 0 for tensor in lora_b)  # LoRA B starts at zero: it moved

    base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).state_dict()
    trained = trainer.model.get_base_model().state_dict()
    q_proj = "model.layers.0.self_attn.q_proj"
    assert torch.equal(trained[f"{q_proj}.base_layer.weight"], base[f"{q_proj}.weight"])
    assert torch.equal(trained["model.embed_tokens.weight"], base["model.embed_tokens.weight"])

    assert (tmp_path / "final" / "adapter_config.json").is_file()
    assert (tmp_path / "final" / "tokenizer_config.json").is_file()
    assert {p.name for p in tmp_path.glob("checkpoint-*")} == {"checkpoint-1", "checkpoint-2"}
    assert "trainer:" in (tmp_path / "resolved_config.yaml").read_text()

    scalars, texts = scalars_and_texts(tmp_path)
    for tag in ["rewards/format/mean", "rewards/accuracy/mean", "rewards/digits/mean", "reward", "reward_std",
                "completions/mean_length", "kl", "learning_rate", "step_time"]:
        assert f"train/{tag}" in scalars
    assert any(tag.startswith("completions") for tag in texts)


@pytest.mark.slow
def test_tiny_run_can_write_a_merged_model(tiny_checkpoint, tmp_path):
    cfg = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path, steps=1), DIGIT_REWARD, "save_merged_model=true")
    train(cfg)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert not hasattr(merged, "peft_config") and (tmp_path / "merged" / "tokenizer_config.json").is_file()


@pytest.mark.slow
def test_full_fine_tune_without_lora(tiny_checkpoint, tmp_path):
    cfg = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path, steps=1), DIGIT_REWARD, "model.lora=null")
    train(cfg)
    assert (tmp_path / "final" / "model.safetensors").is_file()


@pytest.mark.slow
def test_embedded_model_runs_offline(tmp_path):
    cfg = compose_config(
        "model=smollm2-135m",
        "dataset=arithmetic",
        "mode=test",
        "trainer.max_steps=2",
        "trainer.num_generations=4",
        "trainer.per_device_train_batch_size=4",
        "dataset.max_completion_length=24",
        "trainer.save_steps=2",
        f"trainer.output_dir={tmp_path}",
    )
    trainer = train(cfg)
    history = [entry for entry in trainer.state.log_history if "rewards/format/mean" in entry]
    assert len(history) == 2
    assert all(0.0 <= entry["rewards/format/mean"] <= 1.0 for entry in history)
    assert (tmp_path / "final" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "checkpoint-2").is_dir()


@pytest.mark.slow
def test_wandb_offline_needs_no_network(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_config(
        *tiny_overrides(tiny_checkpoint, tmp_path, steps=1), DIGIT_REWARD, "logger=wandb", "logger.wandb.mode=offline"
    )
    train(cfg)
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))


@pytest.mark.slow
def test_held_out_evaluation_during_training(tiny_checkpoint, tmp_path):
    cfg = compose_config(
        *tiny_overrides(tiny_checkpoint, tmp_path), DIGIT_REWARD, "eval.every_n_steps=1", "eval.examples=3"
    )
    trainer = train(cfg)
    scalars, _ = scalars_and_texts(tmp_path)
    assert {"eval/rewards/accuracy/mean", "eval/rewards/format/mean", "eval/reward"} <= scalars
    # The task metric too: held-out greedy accuracy at each evaluation, in TensorBoard and the log history.
    assert {"eval/greedy/accuracy", "eval/greedy/reward"} <= scalars
    greedy = [entry for entry in trainer.state.log_history if "eval_greedy/accuracy" in entry]
    assert [entry["step"] for entry in greedy] == [1, 2] and all(0 <= e["eval_greedy/accuracy"] <= 1 for e in greedy)


@pytest.mark.slow
def test_after_training_evaluation_compares_base_and_trained(tiny_checkpoint, tmp_path, caplog):
    cfg = compose_config(
        *tiny_overrides(tiny_checkpoint, tmp_path), DIGIT_REWARD, "eval.after_training=true", "eval.examples=3"
    )
    with caplog.at_level("INFO", logger="grpo.evaluation.compare"):
        trainer = train(cfg)

    report = tmp_path / "eval"
    for name in ("comparison.json", "problems.jsonl", "summary.md", "chart.png", "examples.html"):
        assert (report / name).is_file(), name
    comparison = json.loads((report / "comparison.json").read_text())
    assert comparison["base"]["n"] == comparison["trained"]["n"] == 3
    assert comparison["setup"]["split"] == "test" and comparison["setup"]["decoding"].startswith("greedy")
    assert sum(comparison["outcomes"].values()) == 3
    assert "| accuracy |" in caplog.text and "Training fixed" in caplog.text  # the table ends the log
    scalars, texts = scalars_and_texts(tmp_path)  # and TensorBoard has it, beside the layout of what matters
    assert {"after_training/base_accuracy", "after_training/trained_accuracy"} <= scalars
    assert {"after_training/summary/text_summary", "custom_scalars__config__"} <= texts
    # Evaluating from the merged adapter put the base weights back exactly, and left the adapter on.
    base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).state_dict()
    q_proj = "model.layers.0.self_attn.q_proj"
    assert torch.equal(trainer.model.get_base_model().state_dict()[f"{q_proj}.base_layer.weight"], base[f"{q_proj}.weight"])


def test_after_training_evaluation_is_checked_before_the_model_loads(tiny_checkpoint, tmp_path):
    cfg = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path), "eval.after_training=true", "reward.format=null")
    with pytest.raises(ConfigError, match="reward.format"):
        train(cfg)
    assert not (tmp_path / "final").exists()


def test_tensorboard_dir_applies_only_to_the_trainer_made_inside(tmp_path, monkeypatch):
    import os

    from grpo.training.loggers import TENSORBOARD_DIR_VARIABLE, tensorboard_dir

    monkeypatch.delenv(TENSORBOARD_DIR_VARIABLE, raising=False)
    with tensorboard_dir(tmp_path / "runs" / "train"):
        assert os.environ[TENSORBOARD_DIR_VARIABLE] == str(tmp_path / "runs" / "train")
    assert TENSORBOARD_DIR_VARIABLE not in os.environ  # a later Trainer in this process picks its own folder
    monkeypatch.setenv(TENSORBOARD_DIR_VARIABLE, "/users/own")
    with tensorboard_dir(tmp_path):
        pass
    assert os.environ[TENSORBOARD_DIR_VARIABLE] == "/users/own"
