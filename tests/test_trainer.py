"""Sampling from the LoRA adapter merged into the base weights (grpo.trainer): same outputs, base weights untouched."""

from contextlib import contextmanager

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from conftest import DIGIT_REWARD, compose_config, tiny_overrides
import grpo.trainer
from grpo.train import train
from grpo.trainer import base_weights, merged_lora


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


def test_training_samples_merged_only_where_it_applies(tiny_checkpoint, tmp_path, monkeypatch):
    entered = []

    @contextmanager
    def counting(model):
        entered.append(model)
        with merged_lora(model):
            yield model

    monkeypatch.setattr(grpo.trainer, "merged_lora", counting)
    lora = train(compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "lora", steps=1), DIGIT_REWARD))
    assert lora.merge_lora_for_generation and len(entered) == 1  # one generation per step

    off = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "off", steps=1), DIGIT_REWARD,
                         "model.merge_lora_for_generation=false")  # fmt: skip
    full = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "full", steps=1), DIGIT_REWARD, "model.lora=null")
    assert not train(off).merge_lora_for_generation and not train(full).merge_lora_for_generation
    assert len(entered) == 1
