"""Weights packed once for oneDNN (grpo/models/packed_weights.py): the same outputs bit for bit, the layers restored
after, gradients through the original path, and the speed-up stepping aside where it cannot be exact."""

from contextlib import contextmanager

import pytest
import torch
from conftest import DIGIT_REWARD, compose_config, tiny_overrides
from transformers import AutoModelForCausalLM

import grpo.models.packed_weights as packed_weights
import grpo.training.trainer
from grpo.models.generation import exact_decoding
from grpo.models.packed_weights import bf16_linear_layers, packed_linear_weights, why_not_pack
from grpo.train import train

# Packing applies only where the CPU computes bf16 (oneDNN's bf16 kernels); elsewhere these tests have nothing to run.
needs_bf16 = pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU does not compute bf16 natively"
)


def bf16_model(checkpoint):
    return AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.bfloat16).eval()


@needs_bf16
def test_packed_layers_give_the_same_logits_and_samples_and_are_restored_after(tiny_checkpoint):
    model = bf16_model(tiny_checkpoint)
    assert why_not_pack(model) is None
    prompt = torch.randint(3, 60, (3, 10))
    settings = dict(max_new_tokens=12, do_sample=True, pad_token_id=2)
    with torch.no_grad():
        logits = model(input_ids=prompt).logits
        torch.manual_seed(3)
        sampled = model.generate(input_ids=prompt, **settings)
        with packed_linear_weights(model):
            assert all("forward" in vars(layer) for layer in bf16_linear_layers(model))
            packed_logits = model(input_ids=prompt).logits
            torch.manual_seed(3)
            packed_sampled = model.generate(input_ids=prompt, **settings)
    assert torch.equal(packed_logits, logits)
    assert torch.equal(packed_sampled, sampled)
    assert not any("forward" in vars(layer) for layer in bf16_linear_layers(model))


@needs_bf16
def test_a_layer_asked_for_a_gradient_runs_unpacked(tiny_checkpoint):
    model = bf16_model(tiny_checkpoint)
    prompt = torch.randint(3, 60, (2, 6))
    head = model.get_output_embeddings()
    with packed_linear_weights(model):
        model(input_ids=prompt).logits.float().sum().backward()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


@needs_bf16
def test_packing_under_bf16_autocast_casts_float32_inputs_as_torch_does(tiny_checkpoint):
    layer = bf16_linear_layers(bf16_model(tiny_checkpoint))[0]
    inputs = torch.randn(4, layer.in_features)  # float32
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = layer(inputs)
        with packed_linear_weights(layer):
            assert torch.equal(layer(inputs), expected)


def test_float32_weights_are_not_packed(tiny_checkpoint):
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.float32)
    assert "no bf16 linear layer" in why_not_pack(model)
    with exact_decoding(model):  # contiguous head input only
        assert not any("forward" in vars(module) for module in model.modules())


@needs_bf16
def test_a_cpu_whose_packed_product_rounds_differently_is_refused(tiny_checkpoint, monkeypatch):
    exact = packed_weights.linear_packed
    monkeypatch.setattr(packed_weights, "linear_packed", lambda *args: exact(*args) * 1.01)
    packed_weights.packed_product_is_exact.cache_clear()
    try:
        assert "differs from torch's" in why_not_pack(bf16_model(tiny_checkpoint))
    finally:
        packed_weights.packed_product_is_exact.cache_clear()


@pytest.mark.slow
@needs_bf16
def test_training_packs_the_weights_for_each_generation_unless_switched_off(tiny_checkpoint, tmp_path, monkeypatch):
    entered = []

    @contextmanager
    def counting(model):
        entered.append(model)
        with packed_linear_weights(model):
            yield model

    monkeypatch.setattr(grpo.training.trainer, "packed_linear_weights", counting)
    bf16 = ["model.dtype=bfloat16", "trainer.bf16=true"]
    on = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "on", steps=1), DIGIT_REWARD, *bf16)
    assert train(on).pack_weights_for_generation and len(entered) == 1
    off = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "off", steps=1), DIGIT_REWARD, *bf16,
                         "speedups.pack_weights_for_generation=false")  # fmt: skip
    assert not train(off).pack_weights_for_generation and len(entered) == 1
