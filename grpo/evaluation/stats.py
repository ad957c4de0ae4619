"""How far to trust a difference: significance tests, intervals and sampling estimators, in plain Python.

Pure functions of counts and lists (no torch, numpy or scipy), so the evaluation report and the sweep report share
them and tests check them against numbers worked out by hand.

- `mcnemar_exact`: did training change more problems for the better than for the worse? (paired, exact)
- `bootstrap_ci`: an interval for the accuracy change, resampling problems (paired)
- `t_interval`: an interval for a mean over a few seeds (Student t)
- `pass_at_k`, `majority_vote`: what K samples per problem say (pass@k, maj@K)
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from statistics import NormalDist


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Two-sided p-value of McNemar's exact test (McNemar 1947): the chance of a split of the changed problems at
    least this uneven if training were as likely to break a problem as to fix it.

    Only problems that changed (base right and trained wrong, or the reverse) carry information, so the test is a
    binomial test of `fixed` against Bin(fixed + broken, 1/2): p = min(1, 2 P[X <= min(fixed, broken)]), and 1.0
    when nothing changed.
    """
    if fixed < 0 or broken < 0:
        raise ValueError(f"counts must be non-negative, got fixed={fixed}, broken={broken}")
    changed = fixed + broken
    if changed == 0:
        return 1.0
    # Exact integers until the last division, which Python rounds correctly however large they are.
    tail = sum(math.comb(changed, i) for i in range(min(fixed, broken) + 1))
    return min(1.0, 2 * tail / 2**changed)


def bootstrap_ci(
    base: Sequence[float], trained: Sequence[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval (Efron & Tibshirani 1993, ch. 13) for mean(trained) - mean(base).

    `base[i]` and `trained[i]` score the same problem i (correct or not, or a share of correct samples), so problems
    are resampled in pairs: the interval then reflects which problems happened to be drawn, not two independent
    draws. Deterministic for a `seed`, and leaves the global random state alone.
    """
    if len(base) != len(trained) or not base:
        raise ValueError(f"need paired, non-empty scores, got {len(base)} base and {len(trained)} trained")
    changes = [float(after) - float(before) for before, after in zip(base, trained)]
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choices(changes, k=len(changes))) / len(changes) for _ in range(resamples))
    tail = (1 - level) / 2
    return _quantile(means, tail), _quantile(means, 1 - tail)


def _quantile(ordered: list[float], q: float) -> float:
    # Linear interpolation between the closest ranks, as numpy.quantile does by default.
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k samples drawn from `n` (of which `c` are correct) is correct: the unbiased
    pass@k estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on Code"), 1 - C(n-c, k) / C(n, k),
    computed as their numerically stable product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every draw of k samples holds a correct one
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def majority_vote(answers: Sequence[Hashable | None]) -> Hashable | None:
    """The most common answer (maj@K, "self-consistency": Wang et al. 2022); a tie goes to the answer seen first.
    None stands for "no answer" and never wins; with no answers at all the vote is None."""
    counts = Counter(answer for answer in answers if answer is not None)
    if not counts:
        return None
    most = max(counts.values())
    return next(answer for answer in answers if answer is not None and counts[answer] == most)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of `values` and its Student t confidence interval, for a handful of seeds.

    Uses the sample standard deviation and n - 1 degrees of freedom. An interval needs two values: with one, low
    and high are nan.
    """
    if not values:
        raise ValueError("t_interval needs at least one value")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    spread = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (n - 1))
    half_width = t_quantile(1 - (1 - level) / 2, n - 1) * spread / math.sqrt(n)
    return mean, mean - half_width, mean + half_width


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom, for 0 < p < 1.

    No scipy (not a dependency): bisection on the t CDF, which comes from the regularized incomplete beta function.
    That holds for every df, where a table would stop at 30 and the normal approximation is 4% too narrow at df 30.
    """
    if not 0 < p < 1 or df < 1:
        raise ValueError(f"need 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, max(1.0, 2 * NormalDist().inv_cdf(p))
    while t_cdf(high, df) < p:  # heavy tails (df 1, 2): the quantile can lie far beyond the normal one
        low, high = high, 2 * high
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
        if high - low <= 1e-12 * high:
            break
    return (low + high) / 2


def t_cdf(t: float, df: int) -> float:
    """P[T <= t] for Student's t with `df` degrees of freedom: 1 - I_x(df/2, 1/2) / 2 at x = df / (df + t^2)."""
    # 1 - x is passed as t^2 / (df + t^2), not computed as 1 - x, which would lose its digits near t = 0.
    tail = _incomplete_beta(df / (df + t * t), t * t / (df + t * t), df / 2, 0.5) / 2
    return 1 - tail if t >= 0 else tail


def _incomplete_beta(x: float, complement: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), given x and 1 - x, by its continued fraction (Numerical
    Recipes, 3rd ed., section 6.4), using I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges slowly."""
    if x <= 0:
        return 0.0
    if complement <= 0:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _incomplete_beta(complement, x, b, a)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(complement)
    return math.exp(log_front) * _beta_fraction(x, a, b) / a


def _beta_fraction(x: float, a: float, b: float) -> float:
    # Modified Lentz's method for the continued fraction of I_x(a, b) (Numerical Recipes' betacf).
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result
