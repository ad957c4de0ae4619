"""Fitting the verifier with trl.RewardTrainer (Bradley-Terry loss on chosen/rejected chats) and measuring it on
held-out pairs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from grpo.errors import ConfigError
from grpo.models.hardware import hardware_defaults
from grpo.runs.layout import REWARD_MODEL_DIR, TENSORBOARD_DIR
from grpo.verifier.pairs import as_chats


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

    from grpo.models.load import build_lora, torch_dtype
    from grpo.training.loggers import tensorboard_dir

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
    with tensorboard_dir(run_dir / TENSORBOARD_DIR / "reward_model"):
        trainer = RewardTrainer(
            model=model, args=args, processing_class=tokenizer, peft_config=lora,
            train_dataset=Dataset.from_list([as_chats(pair) for pair in train_pairs]),
            eval_dataset=Dataset.from_list([as_chats(pair) for pair in held_out]) if held_out else None,
        )
    trainer.train()
    trained = trainer.model.merge_and_unload() if lora is not None else trainer.model
    folder = run_dir / REWARD_MODEL_DIR
    trained.to(torch.float32).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


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

