"""Shared fixtures: the real Hydra config, shrunk for CPU tests, and a tiny random causal LM built on the spot."""

from __future__ import annotations

import os

# Before any Hugging Face import: huggingface_hub reads it once. Tests never reach the Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import string  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from grpo.config.trainer_fields import register_trl_defaults

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

# Chat template in the ChatML style SmolLM2 and Qwen use, so prompts look like the real ones.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def compose_config(*overrides: str):
    """The real `conf/train.yaml` with command-line style overrides, as `python -m grpo.train` would see it."""
    register_trl_defaults()
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose(config_name="train", overrides=list(overrides))


def tiny_overrides(checkpoint: Path, output_dir: Path, steps: int = 2) -> list[str]:
    """Overrides that make a run take seconds: tiny model, 4 prompts, groups of 2, short completions."""
    return [
        f"model.id={checkpoint}",
        "model.gguf=null",
        "model.lora.target_modules=[q_proj,v_proj]",
        "dataset=arithmetic",
        "dataset.size=8",
        "dataset.max_completion_length=8",
        "mode=test",
        f"trainer.max_steps={steps}",
        "trainer.save_steps=1",
        "trainer.num_generations=2",
        "trainer.per_device_train_batch_size=2",
        "trainer.bf16=false",
        "trainer.learning_rate=1e-2",
        "trainer.num_completions_to_print=0",
        "logger.completions_every_n_steps=1",
        f"trainer.output_dir={output_dir}",
        "preflight=false",  # tests of the check turn it on themselves (tests/test_preflight.py)
    ]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights and a character-level tokenizer, saved like a Hub checkpoint."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    specials = ["<|im_start|>", "<|im_end|>", "<pad>"]
    vocab = {token: index for index, token in enumerate(specials + list(string.printable))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="?"))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<pad>", bos_token="<|im_start|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<|im_start|>"],
    )
    # Seeded: the same random model every session, so a run's rewards (and whether its advantages are non-zero) do
    # not change from one test session to the next.
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture
def gsm8k_file(tmp_path) -> Path:
    """Three GSM8K-format rows (question, worked answer ending in '#### N')."""
    rows = [
        {"question": "Tom has 3 apples and buys 4 more. How many?", "answer": "3 + 4 = 7\n#### 7"},
        {"question": "A box holds 1,200 pens; 200 are sold. How many remain?", "answer": "1200-200\n#### 1,000"},
        {"question": "It was 5 degrees and fell by 8. What is it now?", "answer": "5 - 8 = -3\n#### -3"},
    ]
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def digit_share_reward(completions, **kwargs) -> list[float]:
    """Share of digits in a completion: varies across a random model's samples, so GRPO advantages are non-zero."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [sum(ch.isdigit() for ch in text) / max(len(text), 1) for text in texts]


# Add to tiny runs so a random model's updates are not all zero (format and accuracy are 0 for random text).
DIGIT_REWARD = "+reward.digits={weight: 1.0, fn: {_target_: conftest.digit_share_reward, _partial_: true}}"
