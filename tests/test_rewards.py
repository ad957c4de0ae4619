"""Table-driven tests of the reward functions and their parsing helpers (CPU only, no model)."""

import threading
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo.rewards import (
    accuracy_reward,
    closeness_reward,
    completion_text,
    extract_answer,
    format_reward,
    parse_number,
)


def ans(content: str) -> str:
    return f"<think>working</think><answer>{content}</answer>"


def chat(content) -> list[dict]:
    return [{"role": "assistant", "content": content}]


HUGE = "x " * 100_000  # 200k characters


# ---------------------------------------------------------------- completion_text / extract_answer

@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("plain", "plain"),
        (chat("hi"), "hi"),
        (chat([{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]), "ab"),
        (chat(None), ""),
        (chat("a") + [{"role": "tool", "content": "42"}] + chat("b"), "ab"),  # tool output is not the model's
        ({"role": "assistant", "content": "single"}, "single"),
        ([{"content": "no role"}], "no role"),
        (None, ""),
        (42, ""),
        (["not", "messages"], ""),
        ([{"role": "assistant", "content": 7}], ""),
    ],
)
def test_completion_text(completion, expected):
    assert completion_text(completion) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>42</answer>", "42"),
        ("<ANSWER> 7 </Answer>", "7"),
        ("<answer>1</answer> then <answer>2</answer>", "2"),
        ("<answer><answer>5</answer></answer>", "5"),
        ("<answer>1</answer><answer>2", "1"),
        ("<answer></answer>", ""),
        ("no tags", None),
        ("<answer>unclosed", None),
        ("</answer>42<answer>", None),
        (None, None),
        ("<answer>" + "7 " * 10_000 + "42</answer>", ("7 " * 10_000 + "42")[-10_000:].strip()),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


# ---------------------------------------------------------------- parse_number

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234", Fraction(1234)),
        ("-3", Fraction(-3)),
        ("3 1/2", Fraction(7, 2)),
        (r"-\frac{3}{4}", Fraction(-3, 4)),
        ("3/-4", Fraction(-3, 4)),
        ("1e3", Fraction(1000)),
        ("2.5e-1", Fraction(1, 4)),
        (0.1, Fraction(1, 10)),
        (18, Fraction(18)),
        ("-$5", Fraction(-5)),
        ("the answer is -3.", Fraction(-3)),
        ("x=-3", Fraction(-3)),
        ("5 - 3", None),
        ("2(3)", None),
        ("1 234", None),
        ("3²", None),
        ("3/0", None),
        (r"\sqrt{16}", None),  # LaTeX it does not understand: left to math-verify
        (True, None),
        (None, None),
        (float("nan"), None),
        (float("inf"), None),
        (10**101, None),
        ("1" + "0" * 99, Fraction(10**99)),  # 100 digits: the cap
        ("1" + "0" * 100, None),
        ("1e100", Fraction(10**100)),
        ("1e101", None),
    ],
)
def test_parse_number(text, expected):
    assert parse_number(text) == expected


# ---------------------------------------------------------------- format_reward

@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (ans("42"), 1.0),
        ("<answer>42</answer>", 1.0),
        ("reasoning first <answer> 42 </answer> trailing text", 1.0),
        ("<ANSWER>42</Answer>", 1.0),
        (chat(ans("42")), 1.0),
        (chat([{"type": "text", "text": "<answer>4"}, {"type": "text", "text": "2</answer>"}]), 1.0),
        ("the answer is 42", 0.0),
        ("<answer></answer>", 0.0),
        ("<answer>   \n </answer>", 0.0),
        ("<answer>42", 0.0),
        ("42</answer>", 0.0),
        ("</answer>42<answer>", 0.0),
        ("<answer>1</answer><answer>2</answer>", 0.0),
        ("<answer><answer>5</answer></answer>", 0.0),
        ("<answer>1</answer></answer>", 0.0),
        ("<answer>1<answer></answer>", 0.0),
        (chat(None), 0.0),
        (None, 0.0),
        (12345, 0.0),
        (HUGE + "<answer>42</answer>", 1.0),
        ("<answer>" + HUGE + "</answer>", 1.0),
        ("<answer>" * 100_000, 0.0),
    ],
)
def test_format_reward(completion, expected):
    assert format_reward([completion]) == [expected]


# ---------------------------------------------------------------- accuracy_reward

@pytest.mark.parametrize(
    ("completion", "gold", "expected"),
    [
        # plain numbers and how golds are written
        (ans("18"), "18", 1.0),
        (ans("18"), "17", 0.0),
        (ans("18"), 18, 1.0),
        (ans("0.5"), 0.5, 1.0),
        (ans("18"), 18.0, 1.0),
        (ans("-3"), "-3", 1.0),
        (ans("3"), "-3", 0.0),
        (ans("\u22123"), "-3", 1.0),  # unicode minus
        (ans("1,234"), "1234", 1.0),
        (ans("1234"), "1,234", 1.0),
        (ans("1,234,567.5"), "1234567.5", 1.0),
        (ans("18.00"), "18", 1.0),
        (ans("18.0"), "18", 1.0),
        (ans("18.5"), "18", 0.0),
        (ans(".5"), "0.5", 1.0),
        (ans("0.75"), "3/4", 1.0),
        (ans("3/4"), "0.75", 1.0),
        (ans("0.3"), "0.30000000000000004", 0.0),  # exact, no float rounding
        (ans("1e3"), "1000", 1.0),
        # units, currency, words, percent
        (ans("$18"), "18", 1.0),
        (ans("\\$18.00"), "18", 1.0),
        (ans("€5"), "5", 1.0),
        (ans("£5"), "5", 1.0),
        (ans("18 dollars"), "18", 1.0),
        (ans("5 apples"), "5", 1.0),
        (ans("x = 7"), "7", 1.0),
        (ans("50%"), "50", 1.0),
        (ans("50\\%"), "50", 1.0),
        (ans("50%"), "0.5", 0.0),  # GSM8K golds are the number before "%"
        (ans("She pays 3 * 6 = 18 dollars, so the answer is 18"), "18", 1.0),
        (ans("18 or maybe 19"), "18", 0.0),  # the last number counts
        # LaTeX
        (ans("$42$"), "42", 1.0),
        (ans("\\(42\\)"), "42", 1.0),
        (ans("\\boxed{42}"), "42", 1.0),
        (ans("\\boxed{41} no wait \\boxed{42}"), "42", 1.0),
        (ans("\\boxed{\\frac{3}{4}}"), "0.75", 1.0),
        (ans("\\frac{3}{4}"), "3/4", 1.0),
        (ans("\\dfrac{3}{4}"), "3/4", 1.0),
        (ans("\\text{18 dollars}"), "18", 1.0),
        (ans("3\\frac{1}{2}"), "3.5", 1.0),
        (ans("1\\,234"), "1234", 1.0),
        (ans("\\sqrt{16}"), "4", 1.0),  # math-verify fallback
        (ans("$2 \\cdot 3$"), "6", 1.0),  # math-verify fallback
        (ans("\\sqrt{16}"), "5", 0.0),
        # chat format and content parts
        (chat(ans("42")), "42", 1.0),
        (chat([{"type": "text", "text": ans("42")}]), "42", 1.0),
        (chat(None), "42", 0.0),
        ([{"role": "user", "content": ans("42")}], "42", 0.0),  # only assistant text is graded
        # missing or broken answers and golds
        ("42", "42", 0.0),  # no answer tag
        (ans(""), "0", 0.0),
        ("<answer>42", "42", 0.0),
        (ans("42"), "", 0.0),
        (ans("42"), None, 0.0),
        (ans("42"), "forty-two", 0.0),
        (ans("42"), float("nan"), 0.0),
        (ans("42"), True, 0.0),
        (None, "42", 0.0),
    ],
)
def test_accuracy_reward(completion, gold, expected):
    assert accuracy_reward([completion], [gold]) == [expected]


# Inputs a policy could produce by accident or to game the grader: each must score exactly this,
# quickly, without raising, and without executing anything.
ADVERSARIAL = [
    (ans("<answer>42</answer>"), "42", 1.0),  # nested tags: innermost block
    (ans("41") + "<answer>42", "42", 0.0),  # unclosed last tag: the closed block counts
    ("<answer>41</answer><answer>42</answer>", "42", 1.0),  # duplicated: last block counts
    ("<ANSWER>42</ANSWER>", "42", 1.0),
    (HUGE + ans("42"), "42", 1.0),
    (ans(HUGE + "42"), "42", 1.0),
    (ans("42" + HUGE), "42", 0.0),  # only the tail of a huge answer is read
    (ans("<answer>" * 50_000 + "42"), "42", 1.0),
    (ans("9" * 100_000), "9" * 100_000, 0.0),
    (ans("9" * 100_000), "9", 0.0),
    (ans("1" * 101), "1" * 101, 0.0),  # over the digit cap even when equal
    (ans("9**9**9"), "9", 0.0),
    (ans("9^{9^{9}}"), "9", 0.0),
    (ans("\\boxed{9^{9^{9}}}"), "9", 0.0),
    (ans("$\\sqrt{9^{9^{9}}}$"), "3", 0.0),
    (ans("1e999999"), "1", 0.0),
    (ans("1e" + "9" * 100_000), "1", 0.0),
    (ans("1e-999999"), "0", 0.0),
    (ans("5!"), "5", 0.0),
    (ans("2^10"), "1024", 0.0),
    (ans("1 + 41"), "41", 0.0),
    (ans("\u0664\u0662"), "42", 0.0),  # Arabic-Indic digits are not graded
    (ans("\uff14\uff12"), "42", 0.0),  # fullwidth digits are not graded
    (ans("NaN"), "nan", 0.0),
    (ans("inf"), "inf", 0.0),
    (ans("Infinity"), "1e999", 0.0),
    (ans("{" * 9_000 + "42"), "42", 1.0),
    (ans("\\boxed{" * 1_000 + "42"), "42", 1.0),  # unclosed boxes
    (ans("\\frac{" * 1_000 + "1"), "1", 0.0),
    (ans("12345" + " " * 9_998), "45", 0.0),  # a number cut by the length cap is not read as "45"
    (ans("x" * 20_000 + "42"), "42", 0.0),  # a long unbroken tail cannot be cut safely: dropped
    (ans("- " * 50_000 + "3"), "-3", 0.0),
    (ans("1, " * 50_000 + "3"), "3", 1.0),
    (ans("\\" * 9_000 + "42"), "42", 1.0),
    (ans("(" * 100_000), "0", 0.0),
    # long whitespace runs where a careless regex backtracks quadratically
    (ans("3/" + " " * 9_000 + "x"), "3", 0.0),
    (ans("\\frac{" + " " * 9_000 + "x"), "0", 0.0),
    (ans("-" + " " * 9_000 + "3"), "-3", 1.0),
    (ans("3" + " " * 9_000 + "/ 4"), "0.75", 1.0),
]


@pytest.mark.parametrize(("completion", "gold", "expected"), ADVERSARIAL)
def test_accuracy_reward_adversarial(completion, gold, expected):
    assert accuracy_reward([completion], [gold]) == [expected]
    assert format_reward([completion]) in ([0.0], [1.0])


def test_adversarial_batch_is_fast():
    completions = [c for c, _, _ in ADVERSARIAL]
    golds = [g for _, g, _ in ADVERSARIAL]
    start = time.perf_counter()
    scores = accuracy_reward(completions, golds)
    format_reward(completions)
    assert time.perf_counter() - start < 2.0
    assert scores == [e for _, _, e in ADVERSARIAL]


@pytest.mark.parametrize(
    "template",
    [
        "{}",
        "$\\sqrt{{{}}}$",  # reaches the math-verify fallback
        "\\text{{{}}}",
        "\\boxed{{{}}}",
    ],
)
def test_model_output_is_never_executed(tmp_path, template):
    sentinel = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {sentinel}')"
    completion = ans(template.format(payload))
    assert accuracy_reward([completion], ["123456789"]) == [0.0]
    assert not sentinel.exists()


def test_rewards_score_a_batch_and_ignore_trl_kwargs():
    completions = [ans("1"), chat(ans("2")), "3", ans("4")]
    kwargs = {"prompts": ["p"] * 4, "completion_ids": [[1]] * 4, "trainer_state": object()}
    assert accuracy_reward(completions, answer=["1", "2", "3", "5"], **kwargs) == [1.0, 1.0, 0.0, 0.0]
    assert format_reward(completions, **kwargs) == [1.0, 1.0, 0.0, 1.0]


def test_accuracy_reward_missing_golds_score_zero():
    assert accuracy_reward([ans("1"), ans("2")], ["1"]) == [1.0, 0.0]


@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        (ans("-4"), "-4", 1.0),  # exact: full credit, as the accuracy reward
        ("5 - 9 = -3.\n" + ans("-3"), "-4", 0.75),  # right sign, one off
        (ans("1"), "-4", 0.0),  # wrong sign and magnitude: floored at 0
        (ans("72"), "78", 1 - 6 / 78),  # a two-digit product's near miss
        (ans("1"), "0", 0.0),  # gold 0: the distance counts in units
        (ans("0.5"), "0", 0.5),
        ("-4", "-4", 0.0),  # no answer tag
        (ans("four"), "-4", 0.0),
        (ans("-4"), "n/a", 0.0),
    ],
)
def test_closeness_reward_gives_partial_credit_for_near_misses(completion, gold, expected):
    assert closeness_reward([completion], [gold]) == [pytest.approx(expected)]


def test_math_verify_fallback_off_the_main_thread():
    # math-verify's timeout relies on signal.alarm, which raises off the main thread (e.g. in a
    # thread pool); the fallback must still grade there.
    result = []
    worker = threading.Thread(target=lambda: result.append(accuracy_reward([ans("\\sqrt{16}")], ["4"])))
    worker.start()
    worker.join()
    assert result == [[1.0]]


# Tokens that steer random text towards the parser's interesting paths.
TOKENS = [*"0123456789 ,./-+$%{}()^*!eE", "\\frac{", "\\boxed{", "\\sqrt{", "<answer>", "</answer>"]


@settings(max_examples=200, deadline=None, database=None)
@given(
    content=st.lists(st.sampled_from(TOKENS) | st.characters(), max_size=100).map("".join),
    gold=st.text(max_size=20) | st.integers() | st.floats(),
)
def test_rewards_are_total(content, gold):
    """Any text and any gold give a score in the reward's range, never an exception."""
    for completion in (content, ans(content), chat(ans(content))):
        assert accuracy_reward([completion], [gold])[0] in (0.0, 1.0)
        assert 0.0 <= closeness_reward([completion], [gold])[0] <= 1.0
        assert format_reward([completion])[0] in (0.0, 1.0)
