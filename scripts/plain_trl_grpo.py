"""GRPO with TRL alone: the script a user of plain TRL writes, and the baseline that scripts/benchmark.py times.

No Hydra and no grpo code on the training path: a model folder, chat-prompt rows from a JSONL file, two rule
rewards, a LoRA config and trl.GRPOTrainer. The rewards are imported from grpo.rewards only so that both
benchmarked runs score completions identically; they are pure functions and cost the same wherever they live.

    python scripts/plain_trl_grpo.py --model ~/.cache/grpo/embedded/SmolLM2-135M-Instruct.Q4_1 \
        --rows rows.jsonl --output-dir outputs/plain-trl --max-steps 6

`--rows` holds one `{"prompt": [chat messages], "answer": "42"}` per line (scripts/benchmark.py writes the rows
that `python -m grpo.train dataset=arithmetic` trains on). The settings below are the ones the grpo presets
(conf/trainer/grpo.yaml, conf/model/smollm2-135m.yaml) choose, spelled out as a TRL user would; scripts/benchmark.py
checks that they still agree with what grpo.train resolves.
"""

from __future__ import annotations

import argparse

import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

from grpo.rewards import accuracy_reward, format_reward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="local model folder")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="weights' dtype")
    parser.add_argument("--rows", required=True, help="JSONL file of {prompt, answer} rows")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--num-generations", type=int, default=10, help="group size; one group per step")
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--fixed-length", action="store_true", help="every completion is exactly max length")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args()

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.dtype))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = load_dataset("json", data_files=args.rows, split="train")

    config = GRPOConfig(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        num_train_epochs=1,
        num_generations=args.num_generations,
        per_device_train_batch_size=args.num_generations,
        max_completion_length=args.max_completion_length,
        generation_kwargs={"min_new_tokens": args.max_completion_length} if args.fixed_length else None,
        learning_rate=1e-4,
        beta=0.04,
        temperature=1.0,
        reward_weights=[0.5, 1.0],
        bf16=not args.fp32,
        gradient_checkpointing=args.gradient_checkpointing,
        use_cpu=not torch.cuda.is_available(),  # Trainer refuses bf16 on a GPU-less machine unless told
        seed=42,
        logging_steps=1,
        report_to=["tensorboard"],
        log_completions=True,
        num_completions_to_print=2,
        save_strategy="no",
        ddp_find_unused_parameters=False,
    )
    lora = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=[format_reward, accuracy_reward],
        args=config,
        train_dataset=dataset,
        peft_config=lora,
    )
    trainer.train()
    trainer.save_model(f"{args.output_dir}/final")


if __name__ == "__main__":
    main()
