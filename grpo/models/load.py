"""The `model` group: which checkpoint, in which dtype, with which LoRA adapter."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from peft import LoraConfig
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from grpo.config.values import check_dtype
from grpo.errors import ConfigError
from grpo.models.gguf import plain_checkpoint
from grpo.models.hardware import computes_bf16_natively

OFFLINE_HINT = "Offline, use the embedded model (model=smollm2-135m) or a local folder (model.id=/path/to/model)."


def resolve_checkpoint(cfg: DictConfig) -> str:
    """A folder or Hub id that `from_pretrained` can load, checked to be reachable without loading weights."""
    check_dtype("model.dtype", cfg.dtype)
    if cfg.gguf is not None:
        return str(plain_checkpoint(cfg.gguf.package, cfg.gguf.file))
    folder = Path(cfg.id).expanduser()
    if folder.is_dir():
        _check_folder(cfg, folder)
        return str(folder)
    if cfg.id.startswith(("/", ".", "~")) or cfg.id.count("/") > 1:  # a path, never a Hub id (`org/name`)
        raise ConfigError(f"model.id={cfg.id}: no such folder. {OFFLINE_HINT}")
    try:  # config.json is a few hundred bytes: a cheap probe that the Hub (or its local cache) has the model
        AutoConfig.from_pretrained(cfg.id, trust_remote_code=cfg.trust_remote_code)
    except Exception as error:  # huggingface_hub raises several types for "cannot reach"
        raise ConfigError(f"model.id={cfg.id} cannot be loaded ({_first_line(error)}). {OFFLINE_HINT}") from None
    return cfg.id


def _check_folder(cfg: DictConfig, folder: Path) -> None:
    """A local folder must hold a model's config.json; a LoRA adapter alone names the base model it needs."""
    if not (folder / "config.json").is_file() and (folder / "adapter_config.json").is_file():
        raise ConfigError(
            f"model.id={cfg.id} holds a LoRA adapter, not a model: set model.id to its base model "
            "(base_model_name_or_path in adapter_config.json); to evaluate the adapter: python -m grpo.evaluate "
            "eval.run=<its run dir>."
        )
    try:
        AutoConfig.from_pretrained(folder, trust_remote_code=cfg.trust_remote_code)
    except Exception as error:  # no config.json, or one transformers cannot read
        raise ConfigError(
            f"model.id={cfg.id} is not a model folder ({_first_line(error)}). Point it at a folder that "
            "save_pretrained wrote (config.json and weights), or a Hub id."
        ) from None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


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


def check_lora_targets(lora: LoraConfig | None, checkpoint: str, cfg: DictConfig) -> None:
    """Refuse `model.lora.target_modules` that match no layer of the checkpoint, which PEFT finds only once the
    weights are loaded: the layer names come from the model built on the meta device (no weights, no memory)."""
    targets = None if lora is None else lora.target_modules
    if targets is None or targets == "all-linear" or getattr(lora, "target_parameters", None) is not None:
        return
    from peft.tuners.tuners_utils import check_target_module_exists

    layers = _layers(checkpoint, cfg)
    if layers and not any(check_target_module_exists(lora, name) for name in layers):
        weighted = {name.rsplit(".", 1)[-1] for name, layer in layers.items() if _has_matrix(layer)}
        shown = sorted(targets) if isinstance(targets, set) else targets
        raise ConfigError(
            f"model.lora.target_modules={shown}: no layer of {cfg.id} has such a name; its layers with weight "
            f"matrices: {', '.join(sorted(weighted))}. E.g. model.lora.target_modules=[q_proj,v_proj], or all-linear."
        )


def _layers(checkpoint: str, cfg: DictConfig) -> dict[str, torch.nn.Module]:
    """The checkpoint's modules by name; {} when its architecture cannot be built without weights."""
    try:
        config = AutoConfig.from_pretrained(checkpoint, trust_remote_code=cfg.trust_remote_code)
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.trust_remote_code)
    except Exception:  # loading the weights will say what is wrong with this checkpoint
        return {}
    return dict(skeleton.named_modules())


def _has_matrix(layer: torch.nn.Module) -> bool:
    """Linear, Conv1D (GPT-2) and embedding layers: what LoRA adapts."""
    weight = getattr(layer, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.dim() == 2 and not list(layer.children())
