"""Held-out accuracy during training: the reward-hacking warning names the step where the training reward rose while
held-out greedy accuracy fell, and stays silent otherwise."""

import pytest

from grpo.training.held_out import GreedyHeldOut, interval_reward


def history(*rewards_by_step: tuple[int, float]) -> list[dict]:
    return [{"step": step, "reward": reward, "loss": 0.0} for step, reward in rewards_by_step]


def test_interval_reward_averages_the_training_logs_between_two_evaluations():
    logs = history((1, 0.2), (2, 0.4), (3, 0.9)) + [{"step": 2, "eval_reward": 5.0}]
    assert interval_reward(logs, 0, 2) == pytest.approx(0.3) and interval_reward(logs, 3, 5) is None


@pytest.mark.parametrize(
    ("accuracies", "warned_at"),
    [
        ([0.5, 0.4], 20),  # reward rose (0.3 -> 0.8), accuracy fell: hacking
        ([0.5, 0.6], None),  # both rose
        ([0.5, 0.5], None),  # accuracy flat
    ],
)
def test_the_warning_names_the_step_where_reward_rose_and_accuracy_fell(accuracies, warned_at):
    logs = history((5, 0.2), (10, 0.4), (15, 0.7), (20, 0.9))
    tracker = GreedyHeldOut(dataset=None, rewards={}, max_new_tokens=8, batch_size=1)
    warnings = [tracker.record(step, accuracy, logs) for step, accuracy in zip((10, 20), accuracies, strict=True)]
    assert warnings[0] is None
    if warned_at is None:
        assert warnings[1] is None
    else:
        assert warnings[1].startswith(f"step {warned_at}: the training reward rose (0.300 -> 0.800)")
        assert "accuracy fell (0.500 -> 0.400)" in warnings[1]
