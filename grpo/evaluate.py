"""Compare a base model with its GRPO-trained version on held-out problems: accuracy, format, examples, a chart.

Both models answer each problem of the held-out split (GSM8K test, or the arithmetic task's test split) from the same
chat prompt, greedily unless `eval.do_sample=true`, and every completion is scored by the training rewards themselves,
so "accuracy" is what `rewards/accuracy/mean` meant during training. A LoRA adapter is applied to the base model once;
the base completions come from the same weights with the adapter switched off.

    find trained weights -> match training's config -> rewards, dataset -> load model (+ adapter)
    -> generate (base, trained) -> score -> comparison.json, problems.jsonl, summary.md, chart.png, examples.html

    python -m grpo.evaluate eval.run=outputs/<date>/<time>                     # a training run (its final/ adapter)
    python -m grpo.evaluate eval.run=outputs/<date>/<time>/checkpoint-15 eval.limit=50   # a checkpoint, 50 problems
    python -m grpo.evaluate eval.run=... dataset=gsm8k dataset.path=gsm8k/test.jsonl      # another dataset preset

The run's resolved_config.yaml supplies the model, dataset and reward groups (see conf/evaluate.yaml); the report
goes to outputs/eval/<date>/<time>.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from grpo.config.paths import CONFIG_DIR
from grpo.config.validate import check_eval, check_rewards
from grpo.config.values import check_seed
from grpo.errors import ConfigError
from grpo.evaluation.trained import find_weights, is_adapter, load_training_config, match_training
from grpo.rewards.build import build_rewards
from grpo.runs.layout import RESOLVED_CONFIG

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict:
    """Evaluate base and trained model on `cfg.dataset` and write the report; returns comparison.json's content.

    `overrides` are the command-line overrides: they decide which of training's settings the evaluation keeps.
    """
    if OmegaConf.is_missing(cfg.eval, "run"):
        raise ConfigError("eval.run: which trained model? Give a training run dir: eval.run=outputs/<date>/<time>")
    weights = find_weights(cfg.eval.run)
    training = load_training_config(weights)
    cfg = match_training(cfg, training, overrides)
    check_seed("seed", cfg.seed)
    check_eval(cfg.eval)
    rewards = build_rewards(cfg.reward)
    check_rewards(rewards)
    log.info("trained weights: %s (model, dataset, reward: %s)", weights, "its run's" if training else "as configured")

    # Heavy imports here, not at module level: config errors are reported before torch loads.
    from transformers import set_seed

    from grpo.data import build_dataset
    from grpo.evaluation.compare import compare_models, describe
    from grpo.evaluation.trained import load_base_and_adapter
    from grpo.models.load import load_model, resolve_checkpoint
    from grpo.rewards.build import check_reward_columns

    out_dir = Path(cfg.eval.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESOLVED_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    set_seed(cfg.seed)

    dataset = build_dataset(cfg.dataset)
    check_reward_columns(rewards, set(dataset.column_names))
    log.info("dataset: %d %s problems, e.g. %s", len(dataset), cfg.dataset.split, dataset[0]["prompt"][-1]["content"])
    checkpoint = resolve_checkpoint(cfg.model)

    model, tokenizer = load_base_and_adapter(cfg.model, checkpoint, weights)
    # A full fine-tune (model.lora=null) is a whole model of its own, next to the base.
    trained_model = None if is_adapter(weights) else load_model(cfg.model, str(weights))[0]
    setup = describe(cfg, checkpoint, weights, rewards)
    return compare_models(cfg.eval, model, tokenizer, dataset, rewards, out_dir, setup, trained_model)


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="evaluate")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg, HydraConfig.get().overrides.task)
    except ConfigError as error:
        sys.exit(f"error: {error}")


def main() -> None:
    # transformers 5 renamed gradient checkpointing; PEFT still asks for the old name when it loads an adapter.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
    _hydra_main()


if __name__ == "__main__":
    main()
