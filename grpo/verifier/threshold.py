"""The score above which a verifier calls an answer right, calibrated on answers whose correctness the rules know.

A Bradley-Terry reward model only learns to order answers, so its raw score has no fixed meaning; GRPO, which
standardises rewards within each group, then pushes as hard in a group of wrong answers (towards whichever wrong
answer it happens to score higher) as in a group with a right one. Read as a right/wrong verdict at a calibrated
threshold (`reward.reward_model.fn.normalize=threshold`), the verifier pays like the accuracy reward it stands in
for: a group it judges all wrong is flat and pushes nothing (docs/verifier.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from grpo.rewards.reward_model import THRESHOLD_CONFIG_KEY

log = logging.getLogger(__name__)


def best_threshold(scores: Sequence[float], right: Sequence[bool]) -> float:
    """The threshold (midway between two neighbouring scores) that best separates right answers (above it) from
    wrong ones, by balanced accuracy: the mean of `verdict_rates`, so that the more common verdict does not decide.

    Raises ValueError without both right and wrong answers: there is nothing to separate.
    """
    if len(scores) != len(right):
        raise ValueError(f"{len(scores)} scores for {len(right)} labels")
    n_right = sum(map(bool, right))
    n_wrong = len(right) - n_right
    if not n_right or not n_wrong:
        raise ValueError(f"{n_right} right and {n_wrong} wrong answers: calibrating needs both")
    ranked = sorted(zip(scores, map(bool, right)))
    # Sweep the threshold upwards: below every score, all answers are called right.
    best, best_at = 0.5, ranked[0][0] - 1.0
    right_above, wrong_below = n_right, 0
    for index, (score, is_right) in enumerate(ranked):
        right_above -= is_right
        wrong_below += not is_right
        following = ranked[index + 1][0] if index + 1 < len(ranked) else score + 1.0
        if following == score:
            continue  # a threshold can only fall between distinct scores
        balanced = (right_above / n_right + wrong_below / n_wrong) / 2
        if balanced > best:
            best, best_at = balanced, (score + following) / 2
    return best_at


def verdict_rates(scores: Sequence[float], right: Sequence[bool], threshold: float) -> dict[str, float]:
    """How often a right answer scores above `threshold` and a wrong one does not."""
    verdicts = [(score > threshold, bool(is_right)) for score, is_right in zip(scores, right, strict=True)]
    rights = [above for above, is_right in verdicts if is_right]
    wrongs = [not above for above, is_right in verdicts if not is_right]
    return {
        "right_called_right": sum(rights) / len(rights) if rights else float("nan"),
        "wrong_called_wrong": sum(wrongs) / len(wrongs) if wrongs else float("nan"),
    }


def calibrate(folder: Path, answers: list[dict], held_prompts: set[str], cfg: DictConfig) -> dict:
    """The threshold that best tells the sampled right answers from the wrong ones (`best_threshold`),
    stored in the model's config.json for `normalize=threshold`; with the share of each it calls correctly on the
    problems it trained on and on the held-out ones apart.

    Every answer counts, not only the held-out problems': GRPO then trains on these same problems (the quickstart's
    200 are rm.prompts' 200), where the verifier scores answers higher than on problems it never saw; a threshold
    from the held-out tenth alone calls many of the trained problems' wrong answers right (docs/verifier.md).
    """
    from transformers import AutoConfig

    from grpo.rewards import RewardModelReward

    right = [answer["correct"] for answer in answers]
    if all(right) or not any(right):
        log.warning(
            "no threshold calibrated: %s; reward=verifier with normalize=threshold then needs "
            "reward.reward_model.fn.threshold=<raw score>",
            f"{len(answers)} answers, not both right and wrong" if answers else "no answers (rm.answers=FILE)",
        )
        return {}
    verifier = RewardModelReward(
        model=str(folder), input_format="chat", normalize="none", batch_size=cfg.rm.batch_size,
        max_length=cfg.trainer.max_length or 512,
    )
    scores = verifier.score([(answer["prompt"], answer["completion"]) for answer in answers])
    threshold = best_threshold(scores, right)
    config = AutoConfig.from_pretrained(folder)
    setattr(config, THRESHOLD_CONFIG_KEY, threshold)
    config.save_pretrained(folder)
    result = {"threshold": threshold, "threshold_answers": len(answers)}
    for split, held in (("trained", False), ("heldout", True)):
        where = [i for i, answer in enumerate(answers) if (answer["prompt"] in held_prompts) == held]
        rates = verdict_rates([scores[i] for i in where], [right[i] for i in where], threshold)
        result |= {f"{split}_{name}": rate for name, rate in rates.items()}
        log.info(
            "threshold %.3f on %s problems' answers (%d): right ones called right %.3f, wrong ones called wrong %.3f",
            threshold, split, len(where), rates["right_called_right"], rates["wrong_called_wrong"],
        )
    return result

