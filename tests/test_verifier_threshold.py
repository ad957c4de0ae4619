"""The threshold that turns a verifier's scores into right/wrong verdicts: calibrated by balanced accuracy."""

import pytest

from grpo.verifier.threshold import best_threshold, verdict_rates


def test_separable_scores_get_a_threshold_between_the_classes():
    scores = [0.1, 0.4, 2.0, 3.0, -1.0]
    right = [False, False, True, True, False]
    threshold = best_threshold(scores, right)
    assert threshold == pytest.approx(1.2)  # midway between the best wrong (0.4) and the worst right (2.0)
    assert verdict_rates(scores, right, threshold) == {"right_called_right": 1.0, "wrong_called_wrong": 1.0}


def test_the_rarer_class_counts_as_much_as_the_common_one():
    # Nine wrong answers at 0..8, one right answer at 5: calling everything wrong would be right 90% of the time,
    # but balanced accuracy keeps the right answer above the threshold and gives up the wrong ones above it.
    scores = [*range(9), 5.5]
    right = [False] * 9 + [True]
    threshold = best_threshold(scores, right)
    assert 5 < threshold < 5.5
    assert verdict_rates(scores, right, threshold) == {"right_called_right": 1.0, "wrong_called_wrong": 6 / 9}


def test_tied_scores_are_never_split():
    threshold = best_threshold([1.0, 1.0, 0.0], [True, False, False])
    assert threshold == pytest.approx(0.5)  # below the tie: the right answer and its wrong twin both called right


@pytest.mark.parametrize("right", [[True, True], [False, False]])
def test_one_class_alone_cannot_be_calibrated(right):
    with pytest.raises(ValueError, match="calibrating needs both"):
        best_threshold([0.0, 1.0], right)
