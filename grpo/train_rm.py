"""Train a learned reward model, an outcome verifier, from the policy's own answers with trl.RewardTrainer.

As in Cobbe et al. 2021 (GSM8K's verifiers): the policy answers training problems several times, the rule-based
rewards of the `reward` group label every answer (their weighted total: correct and well-formed above wrong or
malformed), and each problem's answers become chosen/rejected pairs. A sequence-classification model with one output
(the policy's own backbone by default) learns to rank them (Bradley-Terry loss). The folder it writes is what
`reward=verifier reward.reward_model.fn.model=<run>/reward_model` trains a policy with.

    sample (policy, train split) -> label (reward group) -> pairs, and swapped-answer pairs (grpo/verifier/)
    -> pairs.jsonl -> RewardTrainer -> reward_model/
    -> held-out pairwise accuracy (rm_eval.json)
    -> the threshold between its scores of right and wrong answers (answers.jsonl; grpo/verifier/threshold.py)

    python -m grpo.train_rm                                     # embedded model and arithmetic task, offline
    python -m grpo.train_rm rm.pairs=pairs.jsonl                # your own {"prompt", "chosen", "rejected"} lines
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig

from grpo.config.paths import CONFIG_DIR
from grpo.config.validate import check_verifier
from grpo.errors import ConfigError
from grpo.runs.layout import ANSWERS_FILE, PAIRS_FILE, RM_EVAL_FILE
from grpo.verifier.pairs import read_answers, read_pairs, split_by_prompt, write_jsonl

log = logging.getLogger(__name__)


def train_reward_model(cfg: DictConfig) -> dict:
    """Sample and label pairs (or read `rm.pairs`), train the reward model, save it, measure it on held-out pairs and
    calibrate its right/wrong threshold on the labelled answers (sampled, or `rm.answers`); returns rm_eval.json's
    content."""
    rewards = check_verifier(cfg)
    run_dir = Path(cfg.trainer.output_dir)
    pairs = read_pairs(cfg.rm.pairs) if cfg.rm.pairs else None
    answers = read_answers(cfg.rm.answers) if cfg.rm.answers else None

    from transformers import set_seed

    from grpo.models.load import build_lora, check_lora_targets, resolve_checkpoint
    from grpo.verifier.fit import fit, pairwise_accuracy, reward_config
    from grpo.verifier.sampling import sample_pairs
    from grpo.verifier.threshold import calibrate

    args = reward_config(cfg.trainer)
    lora = build_lora(cfg.model.lora)  # a bad `model.lora` is refused now, not after sampling
    set_seed(cfg.seed)
    checkpoint = resolve_checkpoint(cfg.model)
    check_lora_targets(lora, checkpoint, cfg.model)
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
    (run_dir / RM_EVAL_FILE).write_text(json.dumps(result, indent=2) + "\n")
    log.info(
        "held-out pairwise accuracy %.3f (%d pairs, mean margin %.3f). Train a policy with it:\n"
        "  python -m grpo.train model=smollm2-135m dataset=arithmetic mode=quickstart reward=verifier "
        "reward.reward_model.fn.model=%s",
        result["heldout_accuracy"], result["heldout_pairs"], result["heldout_margin"], folder,
    )
    return result


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="train_rm")
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
