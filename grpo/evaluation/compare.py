"""Base vs trained on the same problems, from one model in memory: the step both `grpo.evaluate` and `grpo.train
eval.after_training=true` take once they hold a model.

With a LoRA adapter, the base completions come from the same weights with the adapter switched off, and the trained
completions from the adapter merged into the base weights (restored bit for bit afterwards), which samples like
training does and is faster than running the unmerged adapter layers at every token (docs/performance.md). Both
models generate with the exact decoding speed-ups training uses by default (grpo.models.generation.exact_decoding): a
contiguous input for the LM head and, on CPUs with bf16, weights packed once per call.
"""

from __future__ import annotations

import logging
from pathlib import Path

from datasets import Dataset
from omegaconf import DictConfig
from peft import PeftModel

from grpo.evaluation.generate import build_generation_config, generate
from grpo.evaluation.metrics import Rewards, compare, problem_records, score
from grpo.evaluation.report import CONSOLE_CATEGORIES, summary_markdown, write_report
from grpo.models.generation import exact_decoding, merged_lora, why_not_merge_model

log = logging.getLogger(__name__)


def compare_models(
    cfg: DictConfig, model, tokenizer, dataset: Dataset, rewards: Rewards, out_dir: Path, setup: dict,
    trained_model=None,
) -> dict:
    """Complete every problem of `dataset` with the base and the trained model, score both with `rewards`, write the
    report into `out_dir` and return comparison.json's content.

    `model` is a PeftModel (base = adapter off, trained = adapter on), or with `trained_model` given, the base model
    and `trained_model` the fully fine-tuned one. `cfg` is the `eval` section (batch size, decoding, samples per
    problem, examples).
    """
    # Each problem `eval.samples` times in a row: its samples then share a batch, and score's rows line up with them.
    repeated = dataset.select([index for index in range(len(dataset)) for _ in range(cfg.samples)])
    base, trained = complete_both(cfg, model, tokenizer, list(repeated["prompt"]), trained_model)
    records = problem_records(dataset, score(repeated, base, rewards), score(repeated, trained, rewards), cfg.samples)
    comparison = {"setup": setup, **compare(records)}
    out_dir.mkdir(parents=True, exist_ok=True)
    files = write_report(out_dir, comparison, records, cfg.examples)
    log.info("\n%s", summary_markdown(comparison, max_categories=CONSOLE_CATEGORIES))
    log.info("report: %s", ", ".join(str(path) for path in files))
    return comparison


def complete_both(cfg: DictConfig, model, tokenizer, prompts: list, trained_model=None) -> tuple[list, list]:
    """Completions of the base model and of the trained one, for every prompt."""
    was_training = model.training
    model.eval()
    generation = build_generation_config(cfg, model, tokenizer)

    def complete(policy, desc: str) -> list:
        with exact_decoding(policy):
            return generate(policy, tokenizer, prompts, generation, cfg.batch_size, desc)

    try:
        if trained_model is not None:
            return complete(model, "base"), complete(trained_model.eval(), "trained")
        if not isinstance(model, PeftModel):
            raise TypeError("compare_models needs a PeftModel, or the trained model as trained_model")
        with model.disable_adapter():  # the base model: the same weights with the adapter switched off
            base = complete(model, "base")
        reason = why_not_merge_model(model)
        if reason:
            log.info("evaluating the unmerged adapter: %s", reason)
            return base, complete(model, "trained")
        with merged_lora(model):
            return base, complete(model, "trained")
    finally:
        model.train(was_training)


def describe(cfg: DictConfig, checkpoint: str, weights: Path | str, rewards: dict) -> dict:
    """What was compared, for comparison.json and the headers of the report (`cfg`: model, dataset, eval)."""
    decoding = f"sampling at temperature {cfg.eval.temperature}" if cfg.eval.do_sample else "greedy"
    if cfg.eval.samples > 1:
        decoding += f", {cfg.eval.samples} samples per problem"
    return {
        "model": cfg.model.id,
        "base": checkpoint,
        "trained": str(weights),
        "dataset": dataset_name(cfg.dataset),
        "split": cfg.dataset.split,
        "limit": cfg.dataset.limit,
        "decoding": f"{decoding}, at most {cfg.eval.max_new_tokens} new tokens",
        "reward_weights": {name: reward.weight for name, reward in rewards.items()},
    }


def dataset_name(cfg: DictConfig) -> str:
    """`arithmetic`, `gsm8k`, ...: the loader's name, with the local file it read when there is one."""
    name = cfg._target_.rpartition(".")[2].removeprefix("load_")
    return f"{name} ({cfg.path})" if "path" in cfg and cfg.path else name

