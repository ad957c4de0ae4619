"""One-token attention in float32 products (grpo/models/decode_attention.py): the same attention as SDPA's within
float32 rounding, for grouped heads and padded rows, the same decoding, and SDPA everywhere else and after."""

from contextlib import contextmanager

import pytest
import torch
from conftest import DIGIT_REWARD, compose_config, tiny_overrides
from transformers import AutoModelForCausalLM
from transformers.integrations.sdpa_attention import sdpa_attention_forward

import grpo.training.trainer
from grpo.models.decode_attention import decode_attention, single_query_attention, why_not_decode_attention
from grpo.train import train


class Heads(torch.nn.Module):
    """What transformers' attention functions read from the attention module."""

    num_key_value_groups = 3
    is_causal = True
    training = False


def qkv(queries: int, keys: int = 7):
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 6, queries, 8, generator=generator)
    return query, torch.randn(2, 2, keys, 8, generator=generator), torch.randn(2, 2, keys, 8, generator=generator)


@pytest.mark.parametrize("padded", [False, True])
def test_one_query_attends_as_sdpa_does(padded):
    query, key, value = qkv(queries=1)
    mask = None
    if padded:  # the first row's first two keys are left padding
        mask = torch.ones(2, 1, 1, 7, dtype=torch.bool)
        mask[0, ..., :2] = False
    ours, _ = single_query_attention(Heads(), query, key, value, mask, scaling=0.3)
    sdpa, _ = sdpa_attention_forward(Heads(), query, key, value, mask, scaling=0.3)
    assert ours.shape == sdpa.shape == (2, 1, 6, 8)
    torch.testing.assert_close(ours, sdpa, rtol=1e-5, atol=1e-6)


def test_longer_queries_go_to_sdpa_unchanged():
    query, key, value = qkv(queries=7)
    ours, _ = single_query_attention(Heads(), query, key, value, None, scaling=0.3)
    assert torch.equal(ours, sdpa_attention_forward(Heads(), query, key, value, None, scaling=0.3)[0])


def test_decoding_gives_the_same_tokens_and_scores_and_sdpa_comes_back(tiny_checkpoint):
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.float32).eval()
    assert why_not_decode_attention(model) is None
    prompt = torch.randint(3, 60, (3, 10))
    mask = torch.ones_like(prompt)
    mask[0, :3] = 0  # a left-padded row
    settings = dict(attention_mask=mask, max_new_tokens=10, do_sample=False, pad_token_id=2, output_scores=True,
                    return_dict_in_generate=True)  # fmt: skip
    with torch.no_grad():
        sdpa = model.generate(input_ids=prompt, **settings)
        with decode_attention(model):
            assert model.config._attn_implementation != "sdpa"
            ours = model.generate(input_ids=prompt, **settings)
    assert model.config._attn_implementation == "sdpa"
    assert torch.equal(ours.sequences, sdpa.sequences)
    torch.testing.assert_close(torch.stack(ours.scores), torch.stack(sdpa.scores), rtol=1e-5, atol=1e-5)


def test_other_attention_implementations_are_left_alone(tiny_checkpoint):
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, attn_implementation="eager")
    assert "replaces SDPA only" in why_not_decode_attention(model)


@pytest.mark.slow
def test_training_decodes_with_it_unless_switched_off(tiny_checkpoint, tmp_path, monkeypatch):
    entered = []

    @contextmanager
    def counting(model):
        entered.append(model)
        with decode_attention(model):
            yield model

    monkeypatch.setattr(grpo.training.trainer, "decode_attention", counting)
    on = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "on", steps=1), DIGIT_REWARD)
    assert train(on).decode_attention and len(entered) == 1
    off = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "off", steps=1), DIGIT_REWARD,
                         "speedups.decode_attention=false")  # fmt: skip
    assert not train(off).decode_attention and len(entered) == 1
