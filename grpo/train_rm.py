"""Train a learned reward model, an outcome verifier, from the policy's own answers with trl.RewardTrainer.

As in Cobbe et al. 2021 (GSM8K's verifiers): the policy answers training problems several times, the rule-based
rewards of the `reward` group label every answer (their weighted total: correct and well-formed above wrong or
malformed), and each problem's answers become chosen/rejected pairs. A sequence-classification model with one output
(the policy's own backbone by default) learns to rank them (Bradley-Terry loss). The folder it writes is what
`reward=verifier reward.reward_model.fn.model=<run>/reward_model` trains a policy with.

    sample (policy, train split) -> label (reward group) -> pairs, and swapped-answer pairs (grpo/answer_swaps.py)
    -> pairs.jsonl -> RewardTrainer -> reward_model/
    -> held-out pairwise accuracy (rm_eval.json)
    -> the threshold between its scores of right and wrong answers (answers.jsonl; grpo/verifier_threshold.py)

    python -m grpo.train_rm                                     # embedded model and arithmetic task, offline
    python -m grpo.train_rm rm.pairs=pairs.jsonl                # your own {"prompt", "chosen", "rejected"} lines
"""

from __future__ import annotations

import json
import logging
import random
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from grpo.arguments import is_whole_number
from grpo.config import check_dtype, hardware_defaults
from grpo.errors import ConfigError
from grpo.reward_setup import build_rewards

log = logging.getLogger(__name__)

PAIR_FIELDS = ("prompt", "chosen", "rejected")
ANSWER_FIELDS = ("prompt", "completion", "correct")
PAIRS_FILE, ANSWERS_FILE, EVAL_FILE, MODEL_DIR = "pairs.jsonl", "answers.jsonl", "rm_eval.json", "reward_model"


def train_reward_model(cfg: DictConfig) -> dict:
    """Sample and label pairs (or read `rm.pairs`), train the reward model, save it, measure it on held-out pairs and
    calibrate its right/wrong threshold on the labelled answers (sampled, or `rm.answers`); returns rm_eval.json's
    content."""
    check_rm(cfg.rm)
    run_dir = Path(cfg.trainer.output_dir)
    rewards = None if cfg.rm.pairs else build_rewards(cfg.reward)
    pairs = read_pairs(cfg.rm.pairs) if cfg.rm.pairs else None
    answers = read_answers(cfg.rm.answers) if cfg.rm.answers else None

    from transformers import set_seed

    from grpo.model import build_lora, resolve_checkpoint

    args = reward_config(cfg.trainer)
    build_lora(cfg.model.lora)  # a bad `model.lora` is refused now, not after sampling
    set_seed(cfg.seed)
    checkpoint = resolve_checkpoint(cfg.model)
    if pairs is None:
        pairs, answers = sample_pairs(cfg, checkpoint, rewards)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run_dir / PAIRS_FILE, pairs)
    if answers is not None:
        write_jsonl(run_dir / ANSWERS_FILE, answers)
    train_pairs, held_out = split_by_prompt(pairs, cfg.rm.heldout_fraction, cfg.seed)
    log.info(
        "pairs: %d to train on, %d held out; to train again without sampling: rm.pairs=%s",
        len(train_pairs), len(held_out), run_dir / PAIRS_FILE,
    )

    folder = fit(cfg, args, checkpoint, train_pairs, held_out, run_dir)
    result = {"model": str(folder), "train_pairs": len(train_pairs), **pairwise_accuracy(folder, held_out, cfg)}
    result |= calibrate(folder, answers or [], {pair["prompt"] for pair in held_out}, cfg)
    (run_dir / EVAL_FILE).write_text(json.dumps(result, indent=2) + "\n")
    log.info(
        "held-out pairwise accuracy %.3f (%d pairs, mean margin %.3f). Train a policy with it:\n"
        "  python -m grpo.train model=smollm2-135m dataset=arithmetic mode=quickstart reward=verifier "
        "reward.reward_model.fn.model=%s",
        result["heldout_accuracy"], result["heldout_pairs"], result["heldout_margin"], folder,
    )
    return result


def check_rm(cfg: DictConfig) -> None:
    """Refuse `rm` values that cannot work, before anything loads."""
    for key, at_least in (
        ("prompts", 1), ("samples_per_prompt", 2), ("max_pairs_per_prompt", 1), ("answer_swaps", 0), ("batch_size", 1)
    ):
        if not is_whole_number(cfg[key], at_least=at_least):
            raise ConfigError(f"rm.{key}={cfg[key]!r}: must be a whole number, at least {at_least}.")
    if not (isinstance(cfg.heldout_fraction, float) and 0 < cfg.heldout_fraction < 1):
        raise ConfigError(f"rm.heldout_fraction={cfg.heldout_fraction!r}: a share of the prompts, between 0 and 1.")
    if not (isinstance(cfg.temperature, (int, float)) and cfg.temperature > 0):
        raise ConfigError(f"rm.temperature={cfg.temperature!r}: sampling needs a positive temperature.")
    check_dtype("rm.dtype", cfg.dtype)
    if cfg.pairs is not None and not Path(cfg.pairs).is_file():
        raise ConfigError(f"rm.pairs={cfg.pairs}: no such file (JSON lines of {list(PAIR_FIELDS)}).")
    if cfg.answers is not None and not Path(cfg.answers).is_file():
        raise ConfigError(f"rm.answers={cfg.answers}: no such file (JSON lines of {list(ANSWER_FIELDS)}).")
    if cfg.answers is not None and cfg.pairs is None:
        raise ConfigError(
            f"rm.answers={cfg.answers}: read only with rm.pairs=FILE; sampling labels its own answers. "
            "Give both, or drop rm.answers."
        )


def read_pairs(path: str) -> list[dict]:
    """`{prompt, chosen, rejected}` rows (strings) from a JSON-lines file, with the `origin` train_rm writes
    ("sampled" or "swapped") where there is one; an error names the line."""
    from grpo.data.jsonl import read_jsonl

    rows = read_jsonl(path, key="rm.pairs", required=PAIR_FIELDS, check=_pair_problem)
    return [{field: row[field] for field in (*PAIR_FIELDS, "origin") if field in row} for row in rows]


def _pair_problem(row: dict) -> str | None:
    empty = [field for field in PAIR_FIELDS if not isinstance(row[field], str) or not row[field].strip()]
    return f"has no text in '{empty[0]}'" if empty else None


def read_answers(path: str) -> list[dict]:
    """`{prompt, completion, correct}` rows (the answers.jsonl train_rm writes when it samples) to calibrate the
    threshold on; an error names the line."""
    from grpo.data.jsonl import read_jsonl

    rows = read_jsonl(path, key="rm.answers", required=ANSWER_FIELDS, check=_answer_problem)
    return [{field: row[field] for field in ANSWER_FIELDS} for row in rows]


def _answer_problem(row: dict) -> str | None:
    if not isinstance(row["prompt"], str) or not isinstance(row["completion"], str):
        return "needs text in 'prompt' and 'completion'"
    return None if isinstance(row["correct"], bool) else "needs true or false in 'correct'"


def sample_pairs(cfg: DictConfig, checkpoint: str, rewards: dict) -> tuple[list[dict], list[dict]]:
    """The policy answers `rm.prompts` training problems `rm.samples_per_prompt` times; each problem's answers,
    ranked by the rewards' weighted total, give up to `rm.max_pairs_per_prompt` (better, worse) pairs. Returns the
    pairs and every answer with whether it is right (the accuracy reward's 1), to calibrate the threshold on."""
    from grpo.data import build_dataset
    from grpo.eval.generate import build_generation_config, generate
    from grpo.eval.metrics import score
    from grpo.model import load_model
    from grpo.reward_setup import check_reward_columns
    from grpo.trainer import contiguous_head_input

    dataset = build_dataset(cfg.dataset)
    check_reward_columns(rewards, set(dataset.column_names))
    repeated = dataset.select([i for i in range(len(dataset)) for _ in range(cfg.rm.samples_per_prompt)])
    policy, tokenizer = load_model(cfg.model, checkpoint)
    sampling = OmegaConf.create(
        {"do_sample": True, "temperature": cfg.rm.temperature, "max_new_tokens": cfg.rm.max_new_tokens}
    )
    with contiguous_head_input(policy.eval()):
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


def pairs_of(question: str, answers: Sequence[dict], limit: int, rng: random.Random) -> list[dict]:
    """Up to `limit` (chosen, rejected) pairs of distinct answers where the chosen one earned the higher reward."""
    unique = {answer["completion"]: answer["reward"] for answer in answers}
    ranked = [(chosen, rejected) for chosen, high in unique.items() for rejected, low in unique.items() if high > low]
    rng.shuffle(ranked)
    return [
        {"prompt": question, "chosen": chosen, "rejected": rejected, "origin": "sampled"}
        for chosen, rejected in ranked[:limit]
    ]


def swap_pairs(
    rows, scored: list[dict], starts: range, per_problem: int, tokenizer, rewards: dict, rng: random.Random
) -> dict[int, list[dict]]:
    """Per problem (keyed by its first row): up to `per_problem` pairs of a sampled answer and the same answer with
    its final number swapped (grpo/answer_swaps.py), ordered by the rewards' total for each."""
    from grpo.answer_swaps import swaps_of
    from grpo.eval.generate import Completion
    from grpo.eval.metrics import score

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


def split_by_prompt(pairs: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Held-out pairs come from prompts the reward model never trains on, so their accuracy measures ranking
    unseen problems, not remembering seen answers."""
    prompts = sorted({pair["prompt"] for pair in pairs})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: max(1, round(len(prompts) * fraction))]) if len(prompts) > 1 else set()
    return [p for p in pairs if p["prompt"] not in held], [p for p in pairs if p["prompt"] in held]


def reward_config(cfg: DictConfig):
    """trl.RewardConfig from `trainer` (any of its fields, `+trainer.<field>=` for those the YAML does not list)."""
    from trl import RewardConfig

    settings = OmegaConf.to_container(cfg, resolve=True)
    settings.update(hardware_defaults(settings))  # as grpo.train: bf16 autocast only where the hardware computes it
    settings.setdefault("eval_strategy", "steps")
    try:
        return RewardConfig(**settings)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"trainer: {str(error).splitlines()[0]} (trl.RewardConfig's fields)") from None


def fit(
    cfg: DictConfig, args, checkpoint: str, train_pairs: list[dict], held_out: list[dict], run_dir: Path
) -> Path:
    """RewardTrainer on the pairs (as user/assistant chats, the verifier preset's `input_format: chat`); the trained
    model, LoRA merged in, with its tokenizer, in `<run>/reward_model/`."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardTrainer

    from grpo.callbacks import tensorboard_dir
    from grpo.model import build_lora, torch_dtype

    if not train_pairs:
        raise ConfigError(f"rm.heldout_fraction={cfg.rm.heldout_fraction}: it left no pairs to train on.")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, num_labels=1, dtype=torch_dtype(cfg.rm.dtype), trust_remote_code=cfg.model.trust_remote_code
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    lora = build_lora(cfg.model.lora)
    if lora is not None:
        lora.task_type = "SEQ_CLS"  # PEFT then trains the new score head in full, beside the adapter
    if not held_out:
        args.eval_strategy = "no"
    with tensorboard_dir(run_dir / "runs" / "reward_model"):
        trainer = RewardTrainer(
            model=model, args=args, processing_class=tokenizer, peft_config=lora,
            train_dataset=Dataset.from_list([as_chats(pair) for pair in train_pairs]),
            eval_dataset=Dataset.from_list([as_chats(pair) for pair in held_out]) if held_out else None,
        )
    trainer.train()
    trained = trainer.model.merge_and_unload() if lora is not None else trainer.model
    folder = run_dir / MODEL_DIR
    trained.to(torch.float32).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def as_chats(pair: dict) -> dict:
    question = {"role": "user", "content": pair["prompt"]}
    return {
        "chosen": [question, {"role": "assistant", "content": pair["chosen"]}],
        "rejected": [question, {"role": "assistant", "content": pair["rejected"]}],
    }


def pairwise_accuracy(folder: Path, pairs: list[dict], cfg: DictConfig) -> dict:
    """How often the saved model, loaded as `reward=verifier` loads it, scores the chosen answer above the rejected."""
    if not pairs:
        return {"heldout_pairs": 0, "heldout_accuracy": float("nan"), "heldout_margin": float("nan")}
    margins = score_margins(str(folder), pairs, cfg.rm.batch_size, cfg.trainer.max_length or 512)
    result = {
        "heldout_pairs": len(pairs),
        "heldout_accuracy": sum(margin > 0 for margin in margins) / len(margins),
        "heldout_margin": sum(margins) / len(margins),
    }
    origins = sorted({pair.get("origin") for pair in pairs} - {None})
    for origin in origins if len(origins) > 1 else ():  # sampled pairs and swapped ones, each on its own
        hits = [margin > 0 for pair, margin in zip(pairs, margins) if pair.get("origin") == origin]
        result[f"heldout_accuracy_{origin}"] = sum(hits) / len(hits)
    return result


def score_margins(model: str, pairs: Sequence[dict], batch_size: int, max_length: int = 512) -> list[float]:
    """Per `{prompt, chosen, rejected}` pair: the chosen answer's score minus the rejected one's, from the reward
    model loaded as `reward=verifier` loads it (chat turns, raw logits)."""
    from grpo.rewards import RewardModelReward

    verifier = RewardModelReward(
        model=model, input_format="chat", normalize="none", batch_size=batch_size, max_length=max_length
    )
    chosen = verifier.score([(pair["prompt"], pair["chosen"]) for pair in pairs])
    rejected = verifier.score([(pair["prompt"], pair["rejected"]) for pair in pairs])
    return [c - r for c, r in zip(chosen, rejected, strict=True)]


def calibrate(folder: Path, answers: list[dict], held_prompts: set[str], cfg: DictConfig) -> dict:
    """The threshold that best tells the sampled right answers from the wrong ones (grpo/verifier_threshold.py),
    stored in the model's config.json for `normalize=threshold`; with the share of each it calls correctly on the
    problems it trained on and on the held-out ones apart.

    Every answer counts, not only the held-out problems': GRPO then trains on these same problems (the quickstart's
    200 are rm.prompts' 200), where the verifier scores answers higher than on problems it never saw. Measured
    (verifier 8), the held-out tenth's answers alone put the threshold at -1.6, which called 0.34 of the trained
    problems' wrong answers right; all answers put it at 1.4: 0.07 (README, reward=verifier).
    """
    from transformers import AutoConfig

    from grpo.rewards import RewardModelReward
    from grpo.verifier_threshold import CONFIG_KEY, best_threshold, verdict_rates

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
    setattr(config, CONFIG_KEY, threshold)
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


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@hydra.main(version_base=None, config_path="../conf", config_name="train_rm")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        train_reward_model(cfg)
    except ConfigError as error:
        sys.exit(f"error: {error}")


def main() -> None:
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
    _hydra_main()


if __name__ == "__main__":
    main()
