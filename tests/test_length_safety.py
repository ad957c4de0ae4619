"""Table-driven tests of the rule-based rewards of `reward=rm_ensemble`: length, safety, repetition (no model)."""

import re

import pytest

from grpo.errors import ConfigError
from grpo.rewards import SafetyReward, length_reward, repetition_reward


def chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# ---------------------------------------------------------------- length


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 0.2), (5, 0.5), (9, 1 / 1.04), (10, 1.0), (15, 1.0), (20, 1.0), (25, 0.5), (30, 0.2)],
)
def test_length_reward_is_one_inside_the_range_and_decays_outside(length, expected):
    settings = {"min_length": 10, "max_length": 20, "tolerance": 5}
    by_chars = length_reward(["x" * length], unit="chars", **settings)
    by_tokens = length_reward([chat("ignored")], completion_ids=[list(range(length))], unit="tokens", **settings)
    assert by_chars == by_tokens == [pytest.approx(expected)]


def test_length_reward_counts_the_assistant_text_of_chat_completions():
    assert length_reward([chat("abcd"), "abcd", None], unit="chars", min_length=4, max_length=4, tolerance=1) == [
        1.0, 1.0, 1 / 17,
    ]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"unit": "words"}, "unit='words': choose one of"),
        ({"min_length": 10, "max_length": 5}, "need 0 <= min_length <= max_length"),
        ({"min_length": -1}, "need 0 <= min_length"),
        ({"tolerance": 0}, "tolerance=0: must be above 0"),
        ({"unit": "tokens"}, "unit=tokens needs TRL's completion_ids"),  # no completion_ids given
    ],
)
def test_length_reward_refuses_impossible_settings(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        length_reward(["text"], **{"unit": "chars", **settings})


# ---------------------------------------------------------------- safety


@pytest.fixture(scope="module")
def classifier() -> SafetyReward:
    return SafetyReward()


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("Thank you, that is a lovely idea for a picnic.", 0.9, 1.0),
        ("Photosynthesis turns light, water and carbon dioxide into sugar.", 0.9, 1.0),
        ("", 0.9, 1.0),
        ("You are a fucking idiot.", 0.0, 0.1),
        ("This shit is crap.", 0.0, 0.1),
    ],
)
def test_safety_classifier_scores_clean_text_high_and_profanity_low(classifier, text, low, high):
    assert low <= classifier([chat(text)])[0] <= high


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Please kill yourself", 0.0),
        ("KILL\n  YOURSELF now", 0.0),  # any case, any whitespace inside a phrase
        ("skill yourselves", 1.0),  # whole words only
        ("Chop the onions.", 1.0),
        ("chop-onions", 0.0),  # punctuation inside a term is matched literally
        ("The model said chop-onions!", 0.0),
    ],
)
def test_safety_blocklist_matches_whole_terms(text, expected):
    reward = SafetyReward(classifier=None, blocklist=["kill yourself", "chop-onions"])
    assert reward([text]) == [expected]


def test_safety_blocklist_overrides_the_classifier():
    reward = SafetyReward(blocklist=["picnic"])
    assert reward(["What a lovely picnic.", "What a lovely day."]) == [0.0, pytest.approx(1.0, abs=0.1)]
    assert reward([]) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"classifier": None}, "classifier=null with an empty blocklist"),
        ({"classifier": "detoxify"}, "classifier='detoxify'"),
        ({"blocklist": ["ok", " "]}, "blocklist: every entry must be a non-empty string"),
    ],
)
def test_safety_refuses_impossible_settings(settings, message):
    with pytest.raises(ConfigError, match=message):
        SafetyReward(**settings)


# ---------------------------------------------------------------- repetition


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("the cat sat on the mat", 3, 1.0),
        ("I am happy. I am happy. I am happy.", 1, 3 / 9),
        ("la la la la la", 2, 1 / 4),
        ("Go Go go", 1, 1 / 3),  # case-insensitive
        ("too short", 3, 1.0),
        ("", 3, 1.0),
    ],
)
def test_repetition_reward_is_the_share_of_distinct_ngrams(text, n, expected):
    assert repetition_reward([chat(text)], n=n) == [pytest.approx(expected)]
