"""Swapped answers for the verifier: the policy's text with its final number replaced, labelled by the rewards, give
every problem pairs that differ only in the number (grpo/verifier/answer_swaps.py, grpo.verifier.sampling.swap_pairs)."""

import random

import pytest
from conftest import CONF_DIR
from datasets import Dataset
from hydra import compose, initialize_config_dir

from grpo.rewards.build import build_rewards
from grpo.verifier.answer_swaps import NEAR_MISS, swap_answer, swap_target, swaps_of
from grpo.verifier.sampling import swap_pairs


@pytest.mark.parametrize(
    "text, swapped",
    [
        ("13 * 5 = 70.\n<answer>70</answer>", "13 * 5 = 65.\n<answer>65</answer>"),  # the result and the answer
        ("5 - 3 = -2.\n<answer>-2</answer>", "5 - 3 = 65.\n<answer>65</answer>"),
        ("16 + 6 = 22.\n<answer>6</answer>", "16 + 6 = 22.\n<answer>65</answer>"),  # an operand is not the result
        ("7 * 100 = 700.\n<answer>70</answer>", "7 * 100 = 700.\n<answer>65</answer>"),  # 700 is not 70
        ("= 1\n= 70\n<ANSWER> 70 </ANSWER> done", "= 1\n= 65\n<ANSWER> 65 </ANSWER> done"),  # the last block, as read
        ("<answer>3</answer> then <answer>4</answer>", "<answer>3</answer> then <answer>65</answer>"),
        ("It is <answer>about 70</answer>", None),  # no plain number to swap
        ("<answer>70</answer> and <answer>x</answer>", None),  # the block the rewards read holds none
        ("13 * 5 = 70.", None),
    ],
)
def test_the_final_number_and_the_result_that_states_it_are_swapped(text, swapped):
    assert swap_answer(text, "65") == swapped


def test_a_wrong_answer_gets_the_gold_number_and_a_right_one_a_near_miss():
    rng = random.Random(0)
    assert swap_target("= 70 <answer>70</answer>", "65", rng) == "65"
    misses = {swap_target("= 65 <answer>65</answer>", "65", rng) for _ in range(200)}
    assert "65" not in misses and {abs(int(miss) - 65) for miss in misses} == set(range(NEAR_MISS[0], NEAR_MISS[1] + 1))
    assert swap_target("<answer>2.5</answer>", "2.5", rng) is None  # no near miss of a fraction here
    assert swap_target("no answer", "65", rng) is None


def test_swaps_come_from_distinct_answers_up_to_the_limit():
    answers = ["= 65 <answer>65</answer>"] * 3 + ["= 60 <answer>60</answer>", "garbage"]
    couples = swaps_of(answers, "65", limit=5, rng=random.Random(0))
    assert sorted(original for original, _ in couples) == ["= 60 <answer>60</answer>", "= 65 <answer>65</answer>"]
    assert len(swaps_of(answers, "65", limit=1, rng=random.Random(0))) == 1


def test_problems_always_wrong_or_always_right_get_pairs_labelled_by_the_rewards():
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        rewards = build_rewards(compose(config_name="train_rm").reward)  # reward=correctness: the answer alone
    samples = {
        ("What is 13 * 5?", "65"): ["13 * 5 = 70.\n<answer>70</answer>"] * 2,  # always wrong: the gold swapped in
        ("What is 2 + 2?", "4"): ["2 + 2 = 4.\n<answer>4</answer>"] * 2,  # always right: a near miss swapped in
        ("What is 1 + 1?", "2"): ["two", "1 + 1 is two"],  # nothing to swap
    }
    rows = Dataset.from_list([
        {"prompt": [{"role": "user", "content": question}], "answer": gold}
        for (question, gold), answers in samples.items() for _ in answers
    ])  # fmt: skip
    scored = [
        {"completion": text, "reward": 1.0 if f"<answer>{gold}<" in text else 0.0}
        for (_, gold), answers in samples.items() for text in answers
    ]
    tokenizer = lambda text, add_special_tokens: {"input_ids": list(text.encode())}  # noqa: E731
    pairs = swap_pairs(rows, scored, range(0, 6, 2), 2, tokenizer, rewards, random.Random(0))
    assert sorted(pairs) == [0, 2]  # one distinct answer each: one pair each
    assert pairs[0] == [{"prompt": "What is 13 * 5?", "chosen": "13 * 5 = 65.\n<answer>65</answer>",
                         "rejected": "13 * 5 = 70.\n<answer>70</answer>", "origin": "swapped"}]
    (right,) = pairs[2]
    assert right["chosen"] == "2 + 2 = 4.\n<answer>4</answer>" and right["rejected"] != right["chosen"]
    assert swap_pairs(rows, scored, range(0, 6, 2), 0, tokenizer, rewards, random.Random(0)) == {}
