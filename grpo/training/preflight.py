"""The pre-flight check: before the first step, does this setup give GRPO a learning signal?

GRPO learns only from groups whose completions earn different rewards: a group of equal rewards has advantage 0 for
every completion, so it adds no gradient. When the rewards cannot tell the base policy's completions apart (the
format is never met, every completion is cut off at `max_completion_length`, an answer the reward cannot parse),
training runs, logs a flat loss and learns nothing; "loss is 0 / nothing learns" is the most common GRPO report.
So the base policy answers a few training prompts, each `trainer.num_generations` times with the training's sampling
settings, and the run says in seconds what the rewards made of them, with a warning and its fix when the signal is
missing (`preflight=strict` refuses to start instead; `preflight=only` stops after the check).

The check draws from the random generators and puts them back as it found them, so the run trains exactly as it
would without it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from transformers import GenerationConfig

from grpo.errors import ConfigError
from grpo.evaluation.generate import eos_token_ids, generate
from grpo.models.generation import exact_decoding
from grpo.rewards import extract_answer
from grpo.rewards.reward import Reward
from grpo.rewards.scoring import score_completions, weighted_totals

log = logging.getLogger(__name__)

PROMPTS = 4  # training prompts the check samples groups for: enough to see a pattern, seconds on a CPU
# Warn (or refuse, with preflight=strict) past these shares.
EQUAL_GROUPS_LIMIT = 0.9
TRUNCATED_LIMIT = 0.5


@dataclass
class Preflight:
    """What the base policy's sampled groups earned."""

    groups: int
    completions: int
    truncated: float  # share of completions cut off at max_completion_length
    equal_groups: float  # share of groups whose total rewards are all equal (advantage 0: no gradient)
    unparsed: float  # share of completions without a parsable <answer>...</answer>
    reward_means: dict[str, float]
    reward_hits: dict[str, float]  # per reward: share of completions it paid more than 0
    seconds: float

    def problems(self, max_completion_length: int) -> list[str]:
        """Each missing signal, with its fix."""
        found = []
        if self.equal_groups > EQUAL_GROUPS_LIMIT:
            found.append(
                f"{self.equal_groups:.0%} of the groups earned equal rewards, so they give no gradient: raise "
                "trainer.num_generations or trainer.temperature, show the answer format in dataset.prompt.examples, "
                "or add a reward with partial credit (reward=math_closeness)"
            )
        if self.truncated > TRUNCATED_LIMIT:
            found.append(
                f"{self.truncated:.0%} of the completions were cut off at {max_completion_length} tokens before they "
                "ended: raise dataset.max_completion_length (or trainer.max_completion_length)"
            )
        return found

    def table(self) -> str:
        rows = [f"| {name} | {mean:.3f} | {self.reward_hits[name]:.0%} |" for name, mean in self.reward_means.items()]
        return "\n".join([
            f"pre-flight: {self.groups} groups of {self.completions // max(self.groups, 1)} completions from the base "
            f"policy in {self.seconds:.1f} s",
            f"  truncated {self.truncated:.0%}, groups with equal rewards {self.equal_groups:.0%}, "
            f"answers without <answer> {self.unparsed:.0%}",
            "| reward | mean | paid > 0 |",
            "|---|---|---|",
            *rows,
        ])  # fmt: skip


def run_preflight(mode: bool | str, model, tokenizer, dataset, rewards: dict[str, Reward], args) -> Preflight | None:
    """Sample, score and report; raise ConfigError when `mode` is strict and the signal is missing."""
    if mode is False:
        return None
    rows = dataset.select(range(min(PROMPTS, len(dataset))))
    with preserved_random_state():
        report = measure(model, tokenizer, rows, rewards, args)
    log.info("%s", report.table())
    problems = report.problems(args.max_completion_length)
    if problems and mode == "strict":
        raise ConfigError("preflight=strict: " + "; ".join(problems) + ". Or train anyway with preflight=true.")
    for problem in problems:
        log.warning("pre-flight: %s (preflight=false skips this check)", problem)
    return report


def measure(model, tokenizer, rows, rewards: dict[str, Reward], args) -> Preflight:
    """The base policy's groups for `rows`, scored by `rewards` as TRL scores them."""
    start = time.perf_counter()
    group = args.num_generations
    repeated = rows.select([i for i in range(len(rows)) for _ in range(group)])
    was_training = model.training
    model.eval()
    try:
        autocast = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bool(args.bf16))
        with autocast, exact_decoding(model):
            completions = generate(
                model, tokenizer, list(repeated["prompt"]), sampling_config(args, model, tokenizer),
                len(repeated), "pre-flight",
            )  # fmt: skip
    finally:
        model.train(was_training)
    values = score_completions(rewards, repeated, [c.text for c in completions], [c.token_ids for c in completions])
    totals = weighted_totals(rewards, values)
    eos = set(eos_token_ids(model, tokenizer))
    truncated = [len(c.token_ids) >= args.max_completion_length and c.token_ids[-1] not in eos for c in completions]
    groups = [totals[i : i + group] for i in range(0, len(totals), group)]
    return Preflight(
        groups=len(groups),
        completions=len(completions),
        truncated=share(truncated),
        equal_groups=share([max(g) - min(g) < 1e-9 for g in groups]),
        unparsed=share([extract_answer(c.text) is None for c in completions]),
        reward_means={name: mean(v) for name, v in values.items()},
        reward_hits={name: share([x is not None and x > 0 for x in v]) for name, v in values.items()},
        seconds=time.perf_counter() - start,
    )


def sampling_config(args, model, tokenizer) -> GenerationConfig:
    """The training's sampling settings (trl.GRPOConfig), as TRL passes them to `generate`."""
    return GenerationConfig(
        max_new_tokens=args.max_completion_length,
        do_sample=True,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k or 0,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos_token_ids(model, tokenizer),
    )


def share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def mean(values: list) -> float:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else float("nan")


@contextmanager
def preserved_random_state() -> Iterator[None]:
    """Inside: draw freely. After: Python's, NumPy's and torch's generators (every CUDA device's too) as before."""
    python, numpy_state, cpu = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
