"""The policy answers training problems several times; the rule-based rewards label each answer, and each problem's
answers, with swapped-answer twins (grpo/verifier/answer_swaps.py), become ranked pairs."""

from __future__ import annotations

import logging
import random

from omegaconf import DictConfig, OmegaConf

from grpo.errors import ConfigError
from grpo.verifier.pairs import pairs_of

log = logging.getLogger(__name__)


def sample_pairs(cfg: DictConfig, checkpoint: str, rewards: dict) -> tuple[list[dict], list[dict]]:
    """The policy answers `rm.prompts` training problems `rm.samples_per_prompt` times; each problem's answers,
    ranked by the rewards' weighted total, give up to `rm.max_pairs_per_prompt` (better, worse) pairs. Returns the
    pairs and every answer with whether it is right (the accuracy reward's 1), to calibrate the threshold on."""
    from grpo.data import build_dataset
    from grpo.evaluation.generate import build_generation_config, generate
    from grpo.evaluation.metrics import score
    from grpo.models.generation import exact_decoding
    from grpo.models.load import load_model
    from grpo.rewards.build import check_reward_columns

    dataset = build_dataset(cfg.dataset)
    check_reward_columns(rewards, set(dataset.column_names))
    repeated = dataset.select([i for i in range(len(dataset)) for _ in range(cfg.rm.samples_per_prompt)])
    policy, tokenizer = load_model(cfg.model, checkpoint)
    sampling = OmegaConf.create(
        {"do_sample": True, "temperature": cfg.rm.temperature, "max_new_tokens": cfg.rm.max_new_tokens}
    )
    with exact_decoding(policy.eval()):
        completions = generate(
            policy, tokenizer, list(repeated["prompt"]), build_generation_config(sampling, policy, tokenizer),
            cfg.rm.batch_size, "sampling",
        )
    scored = score(repeated, completions, rewards)
    rng = random.Random(cfg.seed)
    starts = range(0, len(scored), cfg.rm.samples_per_prompt)
    swaps = swap_pairs(repeated, scored, starts, cfg.rm.answer_swaps, tokenizer, rewards, rng)
    pairs, labelled = [], []
    for start in starts:
        answers = scored[start : start + cfg.rm.samples_per_prompt]
        question = repeated[start]["prompt"][-1]["content"]
        pairs += pairs_of(question, answers, cfg.rm.max_pairs_per_prompt, rng) + swaps.get(start, [])
        labelled += [{"prompt": question, "completion": a["completion"], "correct": a["correct"]} for a in answers]
    if not pairs:
        raise ConfigError(
            "rm: no problem had a better and a worse answer among its samples, so there is nothing to rank; raise "
            "rm.samples_per_prompt or rm.temperature, or give pairs with rm.pairs=FILE."
        )
    return pairs, labelled


def swap_pairs(
    rows, scored: list[dict], starts: range, per_problem: int, tokenizer, rewards: dict, rng: random.Random
) -> dict[int, list[dict]]:
    """Per problem (keyed by its first row): up to `per_problem` pairs of a sampled answer and the same answer with
    its final number swapped (grpo/verifier/answer_swaps.py), ordered by the rewards' total for each."""
    from grpo.evaluation.generate import Completion
    from grpo.evaluation.metrics import score
    from grpo.verifier.answer_swaps import swaps_of

    if per_problem and "answer" not in rows.column_names:
        log.warning("rm.answer_swaps=%d: the dataset has no 'answer' column to swap in; no swapped pairs", per_problem)
        per_problem = 0
    where, originals, swapped = [], [], []
    for start in starts if per_problem else ():
        answers = {answer["completion"]: answer for answer in scored[start : start + starts.step]}
        for original, text in swaps_of(list(answers), str(rows[start]["answer"]), per_problem, rng):
            where.append(start)
            originals.append(answers[original])
            swapped.append(Completion(text, tokenizer(text, add_special_tokens=False)["input_ids"]))
    pairs: dict[int, list[dict]] = {}
    if not where:
        return pairs
    question = {start: rows[start]["prompt"][-1]["content"] for start in set(where)}
    for start, original, twin in zip(where, originals, score(rows.select(where), swapped, rewards), strict=True):
        if twin["reward"] == original["reward"]:
            continue  # the rewards do not tell them apart (e.g. both malformed): nothing to learn from the pair
        better, worse = (twin, original) if twin["reward"] > original["reward"] else (original, twin)
        pairs.setdefault(start, []).append({
            "prompt": question[start], "chosen": better["completion"], "rejected": worse["completion"],
            "origin": "swapped",
        })  # fmt: skip
    return pairs

