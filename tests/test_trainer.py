"""grpo.training.trainer's speed-ups train the same way: merged-adapter sampling (same outputs, base weights untouched),
completion-only scoring (same log-probabilities and gradients) and a contiguous LM head input (same samples); the
group filter trains on the completions with an advantage as if they had been sampled alone."""

import math
from contextlib import contextmanager

import pytest
import torch
from conftest import DIGIT_REWARD, compose_config, tiny_overrides
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig

import grpo.training.trainer
from grpo.models.generation import base_weights, contiguous_head_input, merged_lora
from grpo.train import train
from grpo.training.trainer import GRPOTrainer


def lora_model(checkpoint, dtype=torch.float32):
    """The tiny model with a LoRA adapter whose B matrices are non-zero, as after some training."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    return model.eval()


def snapshot(model) -> list[torch.Tensor]:
    return [tensor.detach().clone() for tensor, _ in base_weights(model)]


def test_merged_model_computes_what_the_adapter_computes(tiny_checkpoint):
    model = lora_model(tiny_checkpoint)
    tokens = torch.randint(3, 60, (2, 12))
    with torch.no_grad():
        unmerged = model(tokens).logits
        with model.disable_adapter():
            base = model(tokens).logits
        with merged_lora(model):
            assert all(layer.merged for _, layer in base_weights(model))
            merged = model(tokens).logits
    assert not torch.allclose(unmerged, base, atol=1e-3)  # the adapter matters...
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-4)  # ...and merging keeps it


@pytest.mark.slow
def test_greedy_samples_match(tiny_checkpoint):
    model = lora_model(tiny_checkpoint)
    prompt = torch.randint(3, 60, (3, 10))
    settings = dict(max_new_tokens=16, do_sample=False, pad_token_id=2)
    unmerged = model.generate(input_ids=prompt, **settings)
    with merged_lora(model):
        merged = model.generate(input_ids=prompt, **settings)
    assert torch.equal(merged, unmerged)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_base_weights_come_back_bit_for_bit(tiny_checkpoint, dtype):
    # In bf16, merging then subtracting the delta again (PEFT's unmerge) would not give the same bits back.
    model = lora_model(tiny_checkpoint, dtype)
    before = snapshot(model)
    for _ in range(3):
        with merged_lora(model):
            assert not all(torch.equal(a, b) for a, b in zip(before, snapshot(model)))
    assert all(torch.equal(a, b) for a, b in zip(before, snapshot(model)))
    assert not any(layer.merged for _, layer in base_weights(model))


def test_base_weights_come_back_after_an_error(tiny_checkpoint):
    model = lora_model(tiny_checkpoint)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="generation failed"):
        with merged_lora(model):
            raise RuntimeError("generation failed")
    assert all(torch.equal(a, b) for a, b in zip(before, snapshot(model)))


@pytest.mark.slow
def test_training_samples_merged_only_where_it_applies(tiny_checkpoint, tmp_path, monkeypatch):
    entered = []

    @contextmanager
    def counting(model):
        entered.append(model)
        with merged_lora(model):
            yield model

    monkeypatch.setattr(grpo.training.trainer, "merged_lora", counting)
    lora = train(compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "lora", steps=1), DIGIT_REWARD))
    assert lora.merge_lora_for_generation and len(entered) == 1  # one generation per step

    off = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "off", steps=1), DIGIT_REWARD,
                         "speedups.merge_lora_for_generation=false")  # fmt: skip
    full = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "full", steps=1), DIGIT_REWARD, "model.lora=null")
    assert not train(off).merge_lora_for_generation and not train(full).merge_lora_for_generation
    assert len(entered) == 1


@pytest.mark.slow
def test_contiguous_head_input_samples_the_same_and_leaves_no_hook(tiny_checkpoint):
    model = lora_model(tiny_checkpoint)
    head = model.get_output_embeddings()
    prompt = torch.randint(3, 60, (3, 10))
    settings = dict(max_new_tokens=8, do_sample=False, pad_token_id=2)
    seen = []
    strided = model.generate(input_ids=prompt, **settings)
    with contiguous_head_input(model):
        recording = head.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
        contiguous = model.generate(input_ids=prompt, **settings)
        recording.remove()
    assert torch.equal(contiguous, strided)
    assert len(seen) == 8 and all(seen)  # the prompt's last position (a strided view) too
    assert not head._forward_pre_hooks


@pytest.mark.slow
def test_training_generates_with_a_contiguous_head_input(tiny_checkpoint, tmp_path, monkeypatch):
    entered = []

    @contextmanager
    def counting(model):
        entered.append(model)
        with contiguous_head_input(model):
            yield model

    monkeypatch.setattr(grpo.training.trainer, "contiguous_head_input", counting)
    trainer = train(compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "on", steps=1), DIGIT_REWARD))
    assert trainer.contiguous_head_input and len(entered) == 1
    off = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "off", steps=1), DIGIT_REWARD,
                         "speedups.contiguous_head_input=false")  # fmt: skip
    assert not train(off).contiguous_head_input and len(entered) == 1


def tiny_trainer(checkpoint, output_dir, **config) -> GRPOTrainer:
    from conftest import digit_share_reward

    args = GRPOConfig(output_dir=str(output_dir), per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=4, report_to=[], use_cpu=True, bf16=False, **config)  # fmt: skip
    return GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(checkpoint),
        processing_class=AutoTokenizer.from_pretrained(checkpoint),
        reward_funcs=[digit_share_reward],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": ["1+1=", "2+2="]}),
        peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )


def test_scoring_completions_only_gives_the_same_log_probs_and_gradients(tiny_checkpoint, tmp_path, monkeypatch):
    import trl.trainer.utils as trl_utils

    rows_scored = []  # rows TRL's fused LM head computes log-probabilities for
    lm_head = trl_utils._ChunkedLogProbFunction.apply
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply",
                        staticmethod(lambda hidden, *rest: rows_scored.append(len(hidden)) or lm_head(hidden, *rest)))
    trainer = tiny_trainer(tiny_checkpoint, tmp_path)
    assert trainer.score_completions_only
    torch.manual_seed(0)
    input_ids = torch.randint(3, 60, (2, 14))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, :3] = 0  # left-padded prompt
    attention_mask[1, -2:] = 0  # completion ended early (after EOS)
    completion = attention_mask[:, -6:].bool()

    def log_probs_and_grads(completions_only: bool):
        trainer.model.zero_grad()
        trainer.score_completions_only = completions_only
        logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, input_ids, attention_mask, 6)
        logps[completion].sum().backward()
        grads = {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
        return logps.detach(), grads

    all_positions, all_grads = log_probs_and_grads(False)
    only, only_grads = log_probs_and_grads(True)
    torch.testing.assert_close(only[completion], all_positions[completion])
    assert rows_scored == [2 * 13, int(completion.sum())]  # every position of prompt + completion, or completions
    for name, grad in all_grads.items():
        torch.testing.assert_close(only_grads[name], grad)


def test_skipping_zero_advantage_completions_gives_the_same_gradients(tiny_checkpoint, tmp_path, monkeypatch):
    import trl

    rows_trained = []  # rows of each loss forward
    loss = trl.GRPOTrainer._compute_loss

    def counting_loss(self, model, inputs):
        rows_trained.append(len(inputs["advantages"]))
        return loss(self, model, inputs)

    monkeypatch.setattr(trl.GRPOTrainer, "_compute_loss", counting_loss)
    trainer = tiny_trainer(tiny_checkpoint, tmp_path)  # TRL's defaults: DAPO loss, beta=0
    assert trainer.skip_zero_advantage
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    torch.manual_seed(0)
    completion_mask = torch.ones(4, 5, dtype=torch.long)
    completion_mask[1, 3:] = 0
    inputs = {
        "prompt_ids": torch.randint(3, 60, (4, 6)),
        "prompt_mask": torch.ones(4, 6, dtype=torch.long),
        "completion_ids": torch.randint(3, 60, (4, 5)),
        "completion_mask": completion_mask,
        "advantages": torch.tensor([0.7, -0.7, 0.0, 1e-8]),  # the last two: groups of equal rewards
        "num_items_in_batch": completion_mask.sum(),
    }

    def gradients(skip: bool, batch: dict):
        trainer.model.zero_grad()
        trainer.skip_zero_advantage = skip
        trainer._compute_loss(trainer.model, batch).backward()
        return {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.requires_grad}

    every_row, skipped = gradients(False, inputs), gradients(True, inputs)
    assert rows_trained == [4, 2]
    for name, grad in every_row.items():
        assert grad.abs().sum() > 0
        torch.testing.assert_close(skipped[name], grad)

    nothing_to_learn = gradients(True, {**inputs, "advantages": torch.zeros(4)})
    assert rows_trained[-1] == 1 and all(grad.abs().sum() == 0 for grad in nothing_to_learn.values())


@pytest.mark.parametrize("setting", [{"beta": 0.04}, {"loss_type": "grpo"}, {"top_entropy_quantile": 0.5}])
def test_zero_advantage_completions_are_kept_where_they_change_the_gradient(tiny_checkpoint, tmp_path, setting):
    assert not tiny_trainer(tiny_checkpoint, tmp_path, **setting).skip_zero_advantage


def filter_batch(advantages: torch.Tensor) -> dict:
    """A generation batch of four completions (the second ends early) with reference log-probabilities for the KL."""
    torch.manual_seed(0)
    completion_mask = torch.ones(4, 5, dtype=torch.long)
    completion_mask[1, 3:] = 0
    return {
        "prompt_ids": torch.randint(3, 60, (4, 6)),
        "prompt_mask": torch.ones(4, 6, dtype=torch.long),
        "completion_ids": torch.randint(3, 60, (4, 5)),
        "completion_mask": completion_mask,
        "advantages": advantages,
        "ref_per_token_logps": -torch.rand(4, 5) * 3,
        "num_items_in_batch": completion_mask.sum(),
    }


def test_filtering_groups_trains_on_the_completions_with_advantage_as_if_alone(tiny_checkpoint, tmp_path, monkeypatch):
    import trl

    batch = filter_batch(torch.tensor([0.7, -0.7, 0.0, 1e-8]))  # the last two: groups of equal rewards
    monkeypatch.setattr(trl.GRPOTrainer, "_generate_and_score_completions", lambda self, inputs: dict(batch))
    trainer = tiny_trainer(tiny_checkpoint, tmp_path, beta=0.04)  # a KL term: a gradient even at advantage 0
    trainer.current_gradient_accumulation_steps = 1

    trainer.model.eval()  # evaluation batches are left as TRL made them
    assert trainer._generate_and_score_completions([])["num_items_in_batch"] == 18
    trainer.model.train()
    assert trainer._generate_and_score_completions([])["num_items_in_batch"] == 18  # filter off: TRL's batch
    trainer.filter_groups = True
    filtered = trainer._generate_and_score_completions([])
    assert filtered["num_items_in_batch"] == 5 + 3  # the tokens of the two completions with advantage

    def gradients(filter_groups: bool, inputs: dict):
        trainer.model.zero_grad()
        trainer.filter_groups = filter_groups
        trainer._compute_loss(trainer.model, inputs).backward()
        return {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.requires_grad}

    alone = {key: value[:2] if value.dim() else filtered["num_items_in_batch"] for key, value in batch.items()}
    with_others = gradients(True, filtered)
    for name, grad in gradients(False, alone).items():
        assert grad.abs().sum() > 0
        torch.testing.assert_close(with_others[name], grad)

    nothing_to_learn = gradients(True, {**filtered, "advantages": torch.zeros(4)})  # not even the KL term
    assert all(grad.abs().sum() == 0 for grad in nothing_to_learn.values())


@pytest.mark.slow
def test_a_run_with_filtered_groups_trains(tiny_checkpoint, tmp_path):
    trainer = train(compose_config(*tiny_overrides(tiny_checkpoint, tmp_path), DIGIT_REWARD, "filter_groups=true"))
    assert trainer.filter_groups and trainer.state.global_step == 2
    assert all(math.isfinite(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry)
