"""The pre-flight check: it reports the base policy's learning signal before the first step, warns (or refuses,
with preflight=strict) when there is none, and leaves the run exactly as it would have trained without it."""

import logging
import random

import numpy as np
import pytest
import torch
from conftest import DIGIT_REWARD, compose_config, tiny_overrides

from grpo.errors import ConfigError
from grpo.train import train
from grpo.training.preflight import Preflight, preserved_random_state


def tiny(checkpoint, tmp_path, *overrides: str):
    return compose_config(*tiny_overrides(checkpoint, tmp_path / "run"), *overrides)


def test_the_random_generators_come_back_as_they_were():
    def draws():
        return torch.rand(3), random.random(), np.random.rand()

    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    expected = draws()
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    with preserved_random_state():
        draws(), draws()
    after = draws()
    assert torch.equal(after[0], expected[0]) and after[1:] == expected[1:]


@pytest.mark.parametrize(
    ("equal_groups", "truncated", "expected"),
    [
        (0.95, 0.0, ["95% of the groups earned equal rewards"]),
        (0.5, 0.75, ["75% of the completions were cut off at 32 tokens"]),
        (0.9, 0.5, []),  # at the limits: a signal, if a weak one
    ],
)
def test_each_missing_signal_comes_with_its_fix(equal_groups, truncated, expected):
    report = Preflight(4, 20, truncated, equal_groups, 0.0, {"format": 0.1}, {"format": 0.1}, 1.0)
    problems = report.problems(max_completion_length=32)
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start) and ": raise" in problem


def test_a_setup_without_signal_is_reported_and_only_stops_before_training(tiny_checkpoint, tmp_path, caplog):
    # A random model never writes <answer>: format and accuracy are 0 for every completion, every group is flat.
    with caplog.at_level(logging.INFO):
        assert train(tiny(tiny_checkpoint, tmp_path, "preflight=only")) is None
    assert "pre-flight: 4 groups of 2 completions" in caplog.text
    assert "| format | 0.000 | 0% |" in caplog.text
    assert "100% of the groups earned equal rewards" in caplog.text
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_strict_refuses_to_start_without_a_signal(tiny_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match=r"preflight=strict: 100% of the groups earned equal rewards"):
        train(tiny(tiny_checkpoint, tmp_path, "preflight=strict"))


def test_a_bad_mode_is_refused_before_the_model_loads(tiny_checkpoint, tmp_path, monkeypatch):
    import grpo.models.load

    monkeypatch.setattr(grpo.models.load, "load_model", lambda *args: pytest.fail("the model loaded"))
    with pytest.raises(ConfigError, match=r"preflight='maybe': true .* strict .* only"):
        train(tiny(tiny_checkpoint, tmp_path, "preflight=maybe"))


@pytest.mark.slow
def test_a_run_trains_exactly_as_it_would_without_the_check(tiny_checkpoint, tmp_path):
    histories = []
    for mode in ("true", "false"):
        trainer = train(tiny(tiny_checkpoint, tmp_path / mode, DIGIT_REWARD, f"preflight={mode}"))
        histories.append([(e.get("reward"), e.get("loss")) for e in trainer.state.log_history if "reward" in e])
    assert histories[0] == histories[1] and len(histories[0]) == 2
