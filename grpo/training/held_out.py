"""The task metric during training: held-out greedy accuracy at every evaluation (`eval.every_n_steps`), and a warning
when the training reward keeps rising while that accuracy falls.

TRL's eval loop scores one sampled completion per held-out prompt with the training rewards. A reward can rise while
the task gets worse (a learned reward being gamed, partial credit paid for near misses), so we also let the policy
answer the held-out prompts greedily, as the after-training comparison does, and log the accuracy reward's mean as
`eval_greedy/accuracy` (TensorBoard: eval/greedy/accuracy).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from omegaconf import OmegaConf

from grpo.evaluation.generate import build_generation_config, generate
from grpo.evaluation.metrics import ACCURACY
from grpo.models.generation import exact_decoding, merged_lora, why_not_merge_model
from grpo.rewards.reward import Reward
from grpo.rewards.scoring import score_completions, weighted_totals

log = logging.getLogger(__name__)


@dataclass
class GreedyHeldOut:
    """Greedy completions of the held-out prompts, scored by the training rewards."""

    dataset: object  # datasets.Dataset with `prompt` and the rewards' columns
    rewards: dict[str, Reward]
    max_new_tokens: int
    batch_size: int
    history: list[tuple[int, float, float | None]] = field(default_factory=list)  # (step, accuracy, train reward)

    def __call__(self, model, tokenizer) -> dict[str, float]:
        """`eval_greedy/accuracy` (when an accuracy reward is configured) and `eval_greedy/reward` (weighted total)."""
        completions = self._complete(model, tokenizer)
        texts, token_ids = [c.text for c in completions], [c.token_ids for c in completions]
        values = score_completions(self.rewards, self.dataset, texts, token_ids)
        totals = weighted_totals(self.rewards, values)
        metrics = {"eval_greedy/reward": sum(totals) / len(totals)}
        if ACCURACY in values:
            metrics["eval_greedy/accuracy"] = sum(value or 0.0 for value in values[ACCURACY]) / len(texts)
        return metrics

    def _complete(self, model, tokenizer):
        was_training = model.training
        model.eval()
        settings = OmegaConf.create({"do_sample": False, "temperature": 1.0, "max_new_tokens": self.max_new_tokens})
        config = build_generation_config(settings, model, tokenizer)
        prompts = list(self.dataset["prompt"])
        merged = merged_lora(model) if why_not_merge_model(model) is None else nullcontext()
        try:
            with torch.no_grad(), merged, exact_decoding(model):  # packs the merged weights
                return generate(model, tokenizer, prompts, config, self.batch_size, "held-out")
        finally:
            model.train(was_training)

    def record(self, step: int, accuracy: float | None, log_history: list[dict]) -> str | None:
        """Remember this evaluation; return a warning when accuracy fell since the last one while the training reward
        rose over the same steps (the mean of the logged `reward` since then against the interval before)."""
        if accuracy is None:
            return None
        previous_step = self.history[-1][0] if self.history else 0
        self.history.append((step, accuracy, interval_reward(log_history, previous_step, step)))
        if len(self.history) < 2:
            return None
        (_, before, reward_before), (_, now, reward_now) = self.history[-2], self.history[-1]
        if now < before and None not in (reward_before, reward_now) and reward_now > reward_before:
            return (
                f"step {step}: the training reward rose ({reward_before:.3f} -> {reward_now:.3f}) while held-out "
                f"greedy accuracy fell ({before:.3f} -> {now:.3f}): the policy may be gaming its reward (reward "
                "hacking). Compare train/reward with eval/greedy/accuracy in TensorBoard; keep an earlier checkpoint, "
                "or pay less for what the reward can be fooled by."
            )
        return None


def interval_reward(log_history: list[dict], after: int, until: int) -> float | None:
    """Mean training `reward` logged at steps in (after, until]; None when none was logged."""
    rewards = [entry["reward"] for entry in log_history if "reward" in entry and after < entry.get("step", 0) <= until]
    return sum(rewards) / len(rewards) if rewards else None
