"""grpo.evaluation.stats against numbers worked out by hand."""

import math
import random

import pytest

from grpo.evaluation.stats import bootstrap_ci, majority_vote, mcnemar_exact, pass_at_k, t_interval, t_quantile


@pytest.mark.parametrize(
    "fixed, broken, p",
    [
        (16, 7, 2 * sum(math.comb(23, i) for i in range(8)) / 2**23),  # 0.0931
        (7, 16, 2 * sum(math.comb(23, i) for i in range(8)) / 2**23),  # two-sided: the direction does not matter
        (0, 0, 1.0),  # nothing changed: no evidence either way
        (5, 0, 2 / 2**5),  # all five changes one way: 0.0625, still not below 0.05
        (6, 0, 2 / 2**6),
        (3, 3, 1.0),  # an even split; 2 P[X <= 3] exceeds 1 and is capped
        (1, 2, 1.0),
    ],
)
def test_mcnemar_exact(fixed, broken, p):
    assert mcnemar_exact(fixed, broken) == pytest.approx(p, rel=1e-12)


def test_mcnemar_exact_of_16_fixed_and_7_broken():
    assert round(mcnemar_exact(16, 7), 4) == 0.0931


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (5, 1, 1, 0.2),  # pass@1 is the share of correct samples
        (5, 1, 5, 1.0),  # all five samples drawn: the correct one is among them
        (10, 3, 2, 1 - 21 / 45),  # 1 - C(7, 2) / C(10, 2)
        (10, 0, 5, 0.0),
        (10, 10, 1, 1.0),
        (4, 2, 3, 1.0),  # fewer wrong samples (2) than draws (3)
        (200, 13, 10, 1 - math.comb(187, 10) / math.comb(200, 10)),  # the product form agrees with the binomials
    ],
)
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, -1, 1), (5, 1, 0), (5, 1, 6)])
def test_pass_at_k_refuses_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@pytest.mark.parametrize(
    "answers, expected",
    [
        (["4", "5", "4"], "4"),
        (["5", "4", "4", "5"], "5"),  # a tie: the answer given first
        (["4", "5", "5", "4"], "4"),
        ([None, None, "7"], "7"),  # "no answer" never wins, however often
        ([None, None], None),
        ([], None),
        ([3, 3.0, "3"], 3),  # answers are compared as given: 3 == 3.0, but not "3"
    ],
)
def test_majority_vote(answers, expected):
    assert majority_vote(answers) == expected


def test_t_interval_of_a_known_sample():
    mean, low, high = t_interval([1, 2, 3, 4, 5])
    half_width = 2.776445105 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4) * sample sd / sqrt(n)
    assert mean == 3
    assert (low, high) == (pytest.approx(3 - half_width, abs=1e-8), pytest.approx(3 + half_width, abs=1e-8))


@pytest.mark.parametrize(
    "p, df, quantile",  # from the Student t tables
    [
        (0.975, 1, 12.706204736),
        (0.975, 2, 4.302652730),
        (0.975, 4, 2.776445105),
        (0.975, 30, 2.042272456),
        (0.95, 10, 1.812461123),
        (0.995, 5, 4.032142984),
        (0.975, 10_000, 1.960201240),  # the normal quantile, 1.959964, is the limit
        (0.025, 4, -2.776445105),
        (0.5, 7, 0.0),
    ],
)
def test_t_quantile(p, df, quantile):
    assert t_quantile(p, df) == pytest.approx(quantile, abs=1e-8)


def test_t_interval_edge_cases():
    assert t_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)  # no spread, no width
    mean, low, high = t_interval([0.7])  # one seed: a mean, but no interval
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)
    narrow, wide = t_interval([1, 2, 3, 4, 5], level=0.8), t_interval([1, 2, 3, 4, 5], level=0.99)
    assert wide[1] < narrow[1] < 3 < narrow[2] < wide[2]
    with pytest.raises(ValueError):
        t_interval([])


def test_bootstrap_ci_holds_the_observed_change_and_repeats_for_a_seed():
    rng = random.Random(1)
    base = [rng.random() < 0.5 for _ in range(100)]
    trained = [rng.random() < 0.6 for _ in range(100)]
    observed = (sum(trained) - sum(base)) / 100
    state = random.getstate()
    low, high = bootstrap_ci(base, trained, resamples=2000, seed=3)
    assert random.getstate() == state  # the global random state is left alone
    assert low < observed < high and high - low < 0.5
    assert bootstrap_ci(base, trained, resamples=2000, seed=3) == (low, high)
    wider = bootstrap_ci(base, trained, level=0.99, resamples=2000, seed=3)
    assert wider[0] < low and high < wider[1]


def test_bootstrap_ci_is_paired_over_problems():
    # The same answers on every problem: every resample of problems shows no change at all.
    same = [True, False, True, True, False]
    assert bootstrap_ci(same, same, resamples=200) == (0.0, 0.0)
    # Every problem improved by the same amount: so did every resample.
    assert bootstrap_ci([0.0, 0.5, 0.25], [0.5, 1.0, 0.75], resamples=200) == (0.5, 0.5)


def test_bootstrap_ci_refuses_unpaired_scores():
    with pytest.raises(ValueError):
        bootstrap_ci([True, False], [True])
    with pytest.raises(ValueError):
        bootstrap_ci([], [])
