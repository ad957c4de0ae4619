"""The `model` group: which checkpoint, in which dtype, with which LoRA adapter."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from peft import LoraConfig
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from grpo.config import check_dtype, computes_bf16_natively
from grpo.embedded import plain_checkpoint
from grpo.errors import ConfigError

OFFLINE_HINT = "Offline, use the embedded model (model=smollm2-135m) or a local folder (model.id=/path/to/model)."


def resolve_checkpoint(cfg: DictConfig) -> str:
    """A folder or Hub id that `from_pretrained` can load, checked to be reachable without loading weights."""
    check_dtype("model.dtype", cfg.dtype)
    if cfg.gguf is not None:
        return str(plain_checkpoint(cfg.gguf.package, cfg.gguf.file))
    if Path(cfg.id).expanduser().is_dir():
        return str(Path(cfg.id).expanduser())
    try:  # config.json is a few hundred bytes: a cheap probe that the Hub (or its local cache) has the model
        AutoConfig.from_pretrained(cfg.id, trust_remote_code=cfg.trust_remote_code)
    except Exception as error:  # huggingface_hub raises several types for "cannot reach"
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"model.id={cfg.id} cannot be loaded ({first_line}). {OFFLINE_HINT}") from None
    return cfg.id


def load_model(cfg: DictConfig, checkpoint: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The causal LM and its tokenizer; a pad token is added from EOS when the tokenizer has none."""
    model = AutoModelForCausalLM.from_pretrained(
        checkpoint, dtype=torch_dtype(cfg.dtype), trust_remote_code=cfg.trust_remote_code
    )
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def torch_dtype(name: str) -> torch.dtype | str:
    """`model.dtype` as `from_pretrained` takes it."""
    name = dtype_name(name)
    return name if name == "auto" else getattr(torch, name)


def dtype_name(name: str) -> str:
    """`model.dtype` with `bfloat16_if_native` decided for this machine."""
    if name == "bfloat16_if_native":
        return "bfloat16" if computes_bf16_natively() else "float32"
    return name


def build_lora(cfg: DictConfig | None) -> LoraConfig | None:
    """peft.LoraConfig from `model.lora`; None (full fine-tuning) when it is null."""
    if cfg is None:
        return None
    try:
        return instantiate(cfg, _convert_="all")
    except Exception as error:
        raise ConfigError(f"model.lora: {str(error.__cause__ or error).splitlines()[0]}") from None
