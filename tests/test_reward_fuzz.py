"""Property-based tests: whatever a model writes, every reward returns finite values in its documented range,
quickly, without raising, and without evaluating the text."""

import builtins
import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo.rewards import SafetyReward, accuracy_reward, format_reward, length_reward, repetition_reward

# Pieces models (and attackers) produce; hypothesis glues them together with arbitrary text.
FRAGMENTS = [
    "<answer>", "</answer>", "<ANSWER>", "<answer", "answer>", "<answer><answer>", "</answer></answer>",
    "9**9**9**9", "1e999999999", "-1e-999999", "10^{10^{10^{10}}}", "\\boxed{", "\\frac{1}{0}", "\\frac{", "}}}}",
    "NaN", "nan", "inf", "-inf", "Infinity", "１２３", "٣", "²", "⅓", "1,000,000", "$-5.00", "50%", "3/4", "0/0",
    "__import__('os').system('touch /tmp/pwned')", "eval('1+1')", "exec('x=1')", "lambda: 0", "```python\n",
    "\\sqrt{-1}", "\\infty", "\\int_0^1 x dx", "x = 7", "\x00", "\u202e", "🙂", " " * 50, "9" * 5000, "{" * 500,
]
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=50)), max_size=30).map("".join)
completions = st.one_of(
    texts,
    texts.map(lambda t: [{"role": "assistant", "content": t}]),
    texts.map(lambda t: [{"role": "assistant", "content": [{"type": "text", "text": t}]}]),
    st.just([{"role": "assistant", "content": None}]),
)
golds = st.one_of(texts, st.sampled_from(["18", "-3", "1,234", "0.5", "3/4"]), st.integers(), st.floats())

SAFETY = SafetyReward(classifier=None, blocklist=["pwned", "kill switch"])
# Each reward with the range its docstring promises.
REWARDS = {
    "format": (lambda c, g: format_reward(c, answer=g), lambda v: v in (0.0, 1.0)),
    "accuracy": (lambda c, g: accuracy_reward(c, answer=g), lambda v: v in (0.0, 1.0)),
    "length_chars": (lambda c, g: length_reward(c, unit="chars"), lambda v: 0.0 < v <= 1.0),
    "repetition": (lambda c, g: repetition_reward(c), lambda v: 0.0 < v <= 1.0),
    "safety_blocklist": (lambda c, g: SAFETY(c), lambda v: 0.0 <= v <= 1.0),
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", REWARDS)
@FUZZ
@given(batch=st.lists(st.tuples(completions, golds), min_size=1, max_size=4))
def test_rewards_stay_finite_in_range_and_fast(name, batch):
    reward, in_range = REWARDS[name]
    started = time.perf_counter()
    values = reward([c for c, _ in batch], [g for _, g in batch])
    assert time.perf_counter() - started < 1.0
    assert len(values) == len(batch)
    assert all(isinstance(v, float) and math.isfinite(v) and in_range(v) for v in values), values


@pytest.mark.parametrize("name", REWARDS)
def test_rewards_never_evaluate_model_output(name, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a reward evaluated model output")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", forbidden)
    reward, _ = REWARDS[name]
    attacks = ["<answer>__import__('os').system('id')</answer>", "<answer>eval('6*7')</answer>",
               "<answer>\\boxed{\\frac{84}{2}}</answer>", "<answer>2*21</answer>", "<answer>42</answer>"]
    assert len(reward(attacks, ["42"] * len(attacks))) == len(attacks)
