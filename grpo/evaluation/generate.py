"""Batched generation for evaluation: chat prompts in, one completion per prompt out."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class Completion:
    """One generated completion: its text (special tokens removed, as TRL decodes) and its tokens up to EOS."""

    text: str
    token_ids: list[int]


def build_generation_config(
    cfg: DictConfig, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> GenerationConfig:
    """Greedy decoding from `eval`, or temperature sampling with TRL's training defaults (no top-k/top-p cut)."""
    sampling = {"temperature": cfg.temperature, "top_k": 0, "top_p": 1.0} if cfg.do_sample else {}
    return GenerationConfig(
        max_new_tokens=cfg.max_new_tokens,
        do_sample=cfg.do_sample,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos_token_ids(model, tokenizer),
        **sampling,
    )


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every token that ends a turn: the tokenizer's EOS and the model's (Qwen's generation config lists two)."""
    configured = model.generation_config.eos_token_id
    configured = configured if isinstance(configured, list) else [configured]
    return [token for token in dict.fromkeys([tokenizer.eos_token_id, *configured]) if token is not None]


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[dict[str, str]]],
    config: GenerationConfig,
    batch_size: int,
    desc: str,
) -> list[Completion]:
    """One completion per chat prompt, generated `batch_size` prompts at a time, in the prompts' order."""
    texts = [tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False) for prompt in prompts]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    # Longest first: prompts of similar length share a batch (less padding), and running out of memory shows at once.
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    completions: list[Completion] = [None] * len(texts)  # type: ignore[list-item]
    with tqdm(total=len(texts), desc=desc, unit="problem") as progress:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            for index, completion in zip(batch, _generate_batch(model, tokenizer, [texts[i] for i in batch], config)):
                completions[index] = completion
            progress.update(len(batch))
    return completions


@torch.inference_mode()
def _generate_batch(model, tokenizer, texts: list[str], config: GenerationConfig) -> list[Completion]:
    # Left padding: every prompt then ends where generation starts, so one batch can hold prompts of any length.
    inputs = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    output = model.generate(**inputs.to(model.device), generation_config=config)
    new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
    completions = []
    for tokens in new_tokens:
        tokens = _until_eos(tokens, set(config.eos_token_id))
        completions.append(Completion(tokenizer.decode(tokens, skip_special_tokens=True), tokens))
    return completions


def _until_eos(tokens: list[int], eos: set[int]) -> list[int]:
    # What follows the first EOS is padding; TRL counts the EOS itself in the completion length, and so do we.
    for position, token in enumerate(tokens):
        if token in eos:
            return tokens[: position + 1]
    return tokens
