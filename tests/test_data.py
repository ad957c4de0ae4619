"""Dataset loaders and prompt building: the embedded arithmetic task and GSM8K-format files."""


import pytest
from conftest import compose_config

from grpo.data import build_dataset
from grpo.data.arithmetic import evaluate, load_arithmetic
from grpo.data.gsm8k import gold_answer, load_gsm8k
from grpo.data.prompts import to_chat
from grpo.errors import ConfigError


@pytest.mark.parametrize(
    "expression, value",
    [("1 + 2", 3), ("2 + 3 * 4", 14), ("2 * 3 + 4", 10), ("10 - 2 * 3 - 1", 3), ("5 - 7", -2), ("2 * 3 * 4", 24)],
)
def test_evaluate_respects_precedence(expression, value):
    assert evaluate(expression) == value


def test_arithmetic_is_seeded_and_splits_never_overlap():
    settings = {"max_operand": 9, "num_operations": 2}
    train = load_arithmetic(split="train", size=300, **settings)
    again = load_arithmetic(split="train", size=300, **settings)
    test = load_arithmetic(split="test", size=100, **settings)
    other_seed = load_arithmetic(split="test", size=100, seed=1, **settings)
    assert train["question"] == again["question"]
    assert len(set(train["question"])) == 300
    assert not set(train["question"]) & set(test["question"])
    assert not set(train["question"]) & set(other_seed["question"])
    for question, answer in zip(train["question"], train["answer"]):
        assert str(evaluate(question.removeprefix("What is ").removesuffix("?"))) == answer


def test_arithmetic_difficulty_knobs():
    rows = load_arithmetic(size=50, min_operand=100, max_operand=999, num_operations=3, operators=["+"])
    for question in rows["question"]:
        numbers = question.removeprefix("What is ").removesuffix("?").split(" + ")
        assert len(numbers) == 4 and all(100 <= int(n) <= 999 for n in numbers)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"split": "validation"}, "dataset.split"),
        ({"operators": ["/"]}, "dataset.operators"),
        ({"min_operand": 5, "max_operand": 1}, "dataset.min_operand"),
    ],
)
def test_arithmetic_bad_settings_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        load_arithmetic(**kwargs)


def test_arithmetic_small_space_gives_all_it_has_with_a_warning(caplog):
    rows = load_arithmetic(split="test", size=10_000, max_operand=5, operators=["+"])
    assert 0 < len(rows) < 25 and len(set(rows["question"])) == len(rows)  # at most 5 * 5 sums exist
    assert f"only {len(rows)} distinct test problems exist" in caplog.text


@pytest.mark.parametrize(
    "solution, gold", [("2 + 5 = 7\n#### 7", "7"), ("#### 1,234", "1234"), ("#### -3", "-3"), ("no marker", None)]
)
def test_gold_answer(solution, gold):
    assert gold_answer(solution) == gold


def test_gsm8k_local_file(gsm8k_file):
    rows = load_gsm8k(path=str(gsm8k_file), hub_id="unused", hub_config="main", split="train")
    assert rows["answer"] == ["7", "1000", "-3"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the file is empty"),
        ('{"question": "q", "answer": "#### 1"}\nnot json\n', "line 2 is not valid JSON"),
        ('{"question": "q"}\n', r"line 1 lacks the field\(s\) \['answer'\]"),
        ('{"question": "q", "answer": "#### 1"}\n[1, 2]\n', "line 2 is not a JSON object"),
        ('{"question": "q", "answer": "no gold"}\n', "line 1 has no '#### <number>'"),
        ('{"question": "q", "answer": "#### many"}\n', "line 1 has a gold answer that is not a number"),
        ('{"question": "q"}\n{"answer": "#### 1"}\n', r"line 1 lacks .*\(1 more bad lines\)\. .*dataset.bad_rows=skip"),
    ],
)
def test_gsm8k_bad_files_say_which_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_gsm8k(path=str(path), hub_id="unused", hub_config="main", split="train")


def test_gsm8k_bad_rows_can_be_skipped_with_a_count_in_the_log(tmp_path, caplog):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"question": "a", "answer": "#### 1"}\n{"question": "b"}\nbroken\n{"question": "c", "answer": "#### 3"}\n')
    rows = load_gsm8k(path=str(path), hub_id="unused", hub_config="main", split="train", bad_rows="skip")
    assert rows["answer"] == ["1", "3"]
    assert "skipped 2 bad rows: line 2 lacks" in caplog.text and "line 3 is not valid JSON" in caplog.text


def test_gsm8k_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="dataset.path=.*no such file"):
        load_gsm8k(path=str(tmp_path / "nope.jsonl"), hub_id="unused", hub_config="main", split="train")


def test_gsm8k_unreachable_hub_suggests_offline_options():
    with pytest.raises(ConfigError, match="dataset=arithmetic"):
        load_gsm8k(path=None, hub_id="no-such-org/no-such-dataset", hub_config="main", split="train")


def test_to_chat_puts_examples_between_system_and_question():
    messages = to_chat("What is 1 + 1?", "Be brief.", [{"question": "What is 2 + 2?", "completion": "<answer>4</answer>"}])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == "What is 1 + 1?"
    assert to_chat("q", None, []) == [{"role": "user", "content": "q"}]


def test_build_dataset_maps_rows_to_prompt_and_answer(gsm8k_file):
    cfg = compose_config(f"dataset.path={gsm8k_file}", "mode=test", "trainer.output_dir=unused")
    rows = build_dataset(cfg.dataset)
    assert set(rows.column_names) == {"answer", "prompt"}
    assert rows[0]["prompt"][-1] == {"role": "user", "content": "Tom has 3 apples and buys 4 more. How many?"}
    assert rows[0]["prompt"][0]["role"] == "system"
    assert rows["answer"] == ["7", "1000", "-3"]


def test_build_dataset_limit_comes_from_mode():
    cfg = compose_config("dataset=arithmetic", "mode=test", "trainer.output_dir=unused")
    assert len(build_dataset(cfg.dataset)) == 100
