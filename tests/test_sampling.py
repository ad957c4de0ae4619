"""Sampling from variates computed at once (grpo/models/sampling.py): the tokens torch.multinomial draws and the
generator state it leaves, torch's own behaviour outside the case it covers, and the speed-up stepping aside where the
variates would differ."""

import re
from contextlib import contextmanager

import pytest
import torch
from conftest import DIGIT_REWARD, compose_config, tiny_overrides
from transformers import AutoModelForCausalLM

import grpo.models.sampling as sampling
import grpo.training.trainer
from grpo.models.sampling import vectorised_multinomial, vectorised_sampling, why_not_vectorise
from grpo.train import train


def distributions(seed: int, rows: int = 8, vocab: int = 3000) -> torch.Tensor:
    probs = torch.softmax(torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 4, dim=-1)
    probs[:, ::3] = 0.0  # as top-k / top-p leave them
    return probs


@pytest.mark.parametrize("seed", range(5))
def test_the_same_tokens_and_generator_state_as_torch_multinomial(seed):
    probs = distributions(seed)
    torch.manual_seed(seed)
    expected, expected_next = torch.multinomial(probs, 1), torch.rand(3)
    torch.manual_seed(seed)
    drawn, drawn_next = vectorised_multinomial(probs, 1), torch.rand(3)
    assert torch.equal(drawn, expected) and torch.equal(drawn_next, expected_next)
    ours, torchs = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    one_row = probs[0]
    drawn = vectorised_multinomial(one_row, 1, generator=ours)
    assert torch.equal(drawn, torch.multinomial(one_row, 1, generator=torchs))
    assert torch.equal(ours.get_state(), torchs.get_state())


def test_other_calls_are_torchs_own_and_bad_distributions_get_torchs_error():
    probs = distributions(0, rows=2, vocab=50)
    for args, kwargs in [((probs, 3), {}), ((probs, 2, True), {}), ((probs.double(), 1), {})]:
        torch.manual_seed(1)
        expected = torch.multinomial(*args, **kwargs)
        torch.manual_seed(1)
        assert torch.equal(vectorised_multinomial(*args, **kwargs), expected)
    for bad in (probs.clone().fill_(float("nan")), -probs, torch.zeros(2, 50)):
        with pytest.raises(RuntimeError) as torchs:
            torch.multinomial(bad, 1)
        with pytest.raises(RuntimeError, match=re.escape(str(torchs.value).splitlines()[0])):
            vectorised_multinomial(bad, 1)


def test_generate_samples_the_same_sequences_inside_the_context(tiny_checkpoint):
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).eval()
    prompt = torch.randint(3, 60, (4, 9))
    settings = dict(max_new_tokens=10, do_sample=True, top_k=0, pad_token_id=2)
    torch.manual_seed(5)
    expected = model.generate(input_ids=prompt, **settings)
    with vectorised_sampling():
        assert torch.multinomial is vectorised_multinomial
        torch.manual_seed(5)
        sampled = model.generate(input_ids=prompt, **settings)
    assert torch.multinomial is sampling.torch_multinomial
    assert torch.equal(sampled, expected)


def test_a_machine_whose_variates_differ_is_refused(monkeypatch):
    exact = sampling.exponential_variates
    monkeypatch.setattr(sampling, "exponential_variates", lambda *args: exact(*args) * (1 + 2**-20))
    why_not_vectorise.cache_clear()
    try:
        assert "differently on this machine" in why_not_vectorise()
    finally:
        why_not_vectorise.cache_clear()


@pytest.mark.slow
def test_training_samples_with_it_unless_switched_off(tiny_checkpoint, tmp_path, monkeypatch):
    entered = []

    @contextmanager
    def counting():
        entered.append(1)
        with vectorised_sampling():
            yield

    monkeypatch.setattr(grpo.training.trainer, "vectorised_sampling", counting)
    on = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "on", steps=1), DIGIT_REWARD)
    assert train(on).vectorised_sampling and len(entered) == 1
    off = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "off", steps=1), DIGIT_REWARD,
                         "speedups.vectorised_sampling=false")  # fmt: skip
    assert not train(off).vectorised_sampling and len(entered) == 1
