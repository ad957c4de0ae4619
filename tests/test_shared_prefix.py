"""Sharing prompts trains the same way. speedups.shared_prefix: each distinct prompt encoded once gives the log-probs,
entropies and gradients of TRL's forward over every prompt + completion row, for left-padded prompts of different
lengths in groups of different sizes, in any order. speedups.shared_prefill: each distinct prompt prefilled once gives
the same greedy output and the same next-token logits when sampling. Both step aside where they do not apply, and a
short training is the same with and without them (all on the tiny model, fp32)."""

import logging
import math

import pytest
import torch
from conftest import DIGIT_REWARD, compose_config, digit_share_reward, tiny_overrides
from datasets import Dataset
from peft import LoraConfig, PrefixTuningConfig, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)
from trl import GRPOConfig

import grpo.models.prompt_cache
import grpo.training.trainer
from grpo.models.generation import merged_lora
from grpo.models.prompt_cache import encode_prompts, shared_prefill, why_not_model
from grpo.train import train
from grpo.training.shared_prefix import score_with_shared_prompts
from grpo.training.trainer import GRPOTrainer

PAD = 2
BOTH = (False, True)  # TRL's forward, then the shared prefix
PROMPT_A, PROMPT_B = [5, 9, 14, 20, 33], [40, 7, 7, 12, 50, 61, 3, 8]  # 5 and 8 tokens: A is left-padded by 3


def tiny_trainer(checkpoint, output_dir, model=None, lora=None, **config) -> GRPOTrainer:
    torch.manual_seed(0)
    args = GRPOConfig(output_dir=str(output_dir), per_device_train_batch_size=4, num_generations=2, temperature=0.7,
                      max_completion_length=6, report_to=[], use_cpu=True, bf16=False, **config)  # fmt: skip
    return GRPOTrainer(
        model=model if model is not None else AutoModelForCausalLM.from_pretrained(checkpoint),
        processing_class=AutoTokenizer.from_pretrained(checkpoint),
        reward_funcs=[digit_share_reward],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": ["1+1=", "2+2="]}),
        peft_config=lora or LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )


def mixed_batch(order: str = "ABABB", completion_length: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """prompt + completion rows of two prompts (groups of 2 and 3, interleaved), some completions ending early."""
    torch.manual_seed(1)
    width = max(len(PROMPT_A), len(PROMPT_B))
    prompts = {name: [PAD] * (width - len(ids)) + ids for name, ids in (("A", PROMPT_A), ("B", PROMPT_B))}
    prompt_ids = torch.tensor([prompts[name] for name in order])
    prompt_mask = (prompt_ids != PAD).long()
    completion_ids = torch.randint(3, 60, (len(order), completion_length))
    completion_mask = torch.ones_like(completion_ids)
    for row, length in enumerate([completion_length, 3, 5, 1, completion_length][: len(order)]):
        completion_mask[row, length:] = 0
        completion_ids[row, length:] = PAD
    return torch.cat([prompt_ids, completion_ids], 1), torch.cat([prompt_mask, completion_mask], 1)


def score(trainer, shared: bool, input_ids, attention_mask, **kwargs):
    """Log-probs, entropies and LoRA gradients (of a loss using both) of the completion tokens, shared or TRL's way."""
    trainer.model.zero_grad()
    trainer.shared_prefix = shared
    completion = attention_mask[:, -6:].bool()
    logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
        trainer.model, input_ids, attention_mask, 6, compute_entropy=True, **kwargs
    )
    if torch.is_grad_enabled():
        (logps[completion].sum() + 0.1 * entropies[completion].sum()).backward()
    grads = {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None}
    return logps.detach() * completion, entropies.detach() * completion, grads


def assert_same_scores(trainer, input_ids, attention_mask, **kwargs):
    logps, entropies, grads = score(trainer, False, input_ids, attention_mask, **kwargs)
    shared_logps, shared_entropies, shared_grads = score(trainer, True, input_ids, attention_mask, **kwargs)
    torch.testing.assert_close(shared_logps, logps, atol=1e-5, rtol=0)
    torch.testing.assert_close(shared_entropies, entropies, atol=1e-5, rtol=0)
    assert shared_grads.keys() == grads.keys()
    for name, grad in grads.items():
        assert grad.abs().sum() > 0
        torch.testing.assert_close(shared_grads[name], grad, atol=1e-5, rtol=1e-4)


def rows_seen(trainer) -> list[tuple[int, int]]:
    """The (rows, tokens) shape of every forward through the model's embedding, recorded as they happen."""
    shapes = []
    embeddings = trainer.model.get_input_embeddings()
    embeddings.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    return shapes


@pytest.mark.parametrize("order", ["ABABB", "AABBB", "BABAB", "ABBAA"])
def test_log_probs_entropies_and_lora_gradients_are_trls(tiny_checkpoint, tmp_path, order):
    trainer = tiny_trainer(tiny_checkpoint, tmp_path)
    assert trainer.shared_prefix
    input_ids, attention_mask = mixed_batch(order)
    shapes = rows_seen(trainer)
    assert_same_scores(trainer, input_ids, attention_mask)
    # TRL: five rows of prompt + completion. Shared: the two prompts but their last token, then each row's last
    # prompt token + completion.
    assert shapes == [(5, 14), (2, 7), (5, 7)]


def test_reference_and_old_policy_passes_are_trls(tiny_checkpoint, tmp_path):
    trainer = tiny_trainer(tiny_checkpoint, tmp_path)
    input_ids, attention_mask = mixed_batch()
    with torch.no_grad():
        # TRL's reference: the adapter disabled, in chunks of per_device_train_batch_size rows (here 2: chunks of
        # groups cut in two, and a last chunk of one row).
        with trainer.model.disable_adapter():
            reference = [score(trainer, shared, input_ids, attention_mask, batch_size=2)[:2] for shared in BOTH]
        old_policy = [score(trainer, shared, input_ids, attention_mask, batch_size=2)[:2] for shared in BOTH]
    for (logps, entropies), (shared_logps, shared_entropies) in (reference, old_policy):
        torch.testing.assert_close(shared_logps, logps, atol=1e-5, rtol=0)
        torch.testing.assert_close(shared_entropies, entropies, atol=1e-5, rtol=0)
    assert not torch.allclose(reference[0][0], old_policy[0][0], atol=1e-3)  # the adapter was off, then on


def tiny_config(config_class, **extra):
    return config_class(vocab_size=103, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
                        pad_token_id=PAD, **extra)  # fmt: skip


@pytest.mark.parametrize(
    ("model_class", "config"),
    [
        (Qwen2ForCausalLM, lambda: tiny_config(Qwen2Config)),
        (Qwen3ForCausalLM, lambda: tiny_config(Qwen3Config)),
        (MistralForCausalLM, lambda: tiny_config(MistralConfig, sliding_window=None)),
        (LlamaForCausalLM, lambda: tiny_config(LlamaConfig, attn_implementation="eager")),
    ],
    ids=["qwen2", "qwen3", "mistral", "llama-eager"],
)
def test_each_allowed_architecture_scores_as_trl(tiny_checkpoint, tmp_path, model_class, config):
    torch.manual_seed(0)
    trainer = tiny_trainer(tiny_checkpoint, tmp_path, model=model_class(config()))
    assert trainer.shared_prefix
    assert_same_scores(trainer, *mixed_batch())


def test_full_fine_tuning_and_its_reference_model_score_as_trl(tiny_checkpoint, tmp_path):
    torch.manual_seed(0)
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_checkpoint),
        processing_class=AutoTokenizer.from_pretrained(tiny_checkpoint),
        reward_funcs=[digit_share_reward],
        args=GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, beta=0.04,
                        report_to=[], use_cpu=True, bf16=False),  # fmt: skip
        train_dataset=Dataset.from_dict({"prompt": ["1+1=", "2+2="]}),
    )
    assert trainer.shared_prefix and trainer.ref_model is not None  # every weight trains; a separate reference
    input_ids, attention_mask = mixed_batch()
    assert_same_scores(trainer, input_ids, attention_mask)

    def reference_logps(shared: bool) -> torch.Tensor:
        trainer.shared_prefix = shared
        with torch.no_grad():
            logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.ref_model, input_ids, attention_mask, 6)
        return logps[attention_mask[:, -6:].bool()]

    torch.testing.assert_close(reference_logps(True), reference_logps(False), atol=1e-5, rtol=0)


def test_the_loss_of_partial_groups_left_by_skip_zero_advantage_is_trls(tiny_checkpoint, tmp_path):
    trainer = tiny_trainer(tiny_checkpoint, tmp_path)  # TRL's defaults: DAPO loss, beta=0
    assert trainer.skip_zero_advantage
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    input_ids, attention_mask = mixed_batch()
    inputs = {
        "prompt_ids": input_ids[:, :-6], "prompt_mask": attention_mask[:, :-6],
        "completion_ids": input_ids[:, -6:], "completion_mask": attention_mask[:, -6:],
        "advantages": torch.tensor([0.5, 0.3, 0.0, -0.3, 0.0]),  # kept: A once, B twice (of its three)
        "num_items_in_batch": attention_mask[:, -6:].sum(),
    }  # fmt: skip

    def gradients(shared: bool):
        trainer.model.zero_grad()
        trainer.shared_prefix = shared
        trainer._compute_loss(trainer.model, inputs).backward()
        return {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None}

    shapes = rows_seen(trainer)
    trls, shared = gradients(False), gradients(True)
    assert shapes == [(3, 14), (2, 7), (3, 7)]
    for name, grad in trls.items():
        assert grad.abs().sum() > 0
        torch.testing.assert_close(shared[name], grad, atol=1e-5, rtol=1e-4)


def test_a_batch_without_repeated_prompts_takes_trls_forward(tiny_checkpoint, tmp_path, caplog):
    trainer = tiny_trainer(tiny_checkpoint, tmp_path)
    input_ids, attention_mask = mixed_batch("AB")
    shapes = rows_seen(trainer)
    with caplog.at_level(logging.INFO, logger="grpo.training.trainer"):
        for _ in range(2):
            score(trainer, True, input_ids, attention_mask)
    assert shapes == [(2, 14), (2, 14)]
    assert caplog.text.count("no prompt repeats") == 1  # logged once


def test_images_take_trls_forward(tiny_checkpoint, tmp_path):
    trainer = tiny_trainer(tiny_checkpoint, tmp_path)
    input_ids, attention_mask = mixed_batch()
    model = trainer.model
    assert trainer.shares_prefix(model, input_ids, attention_mask, 6, False, {"pixel_values": None})
    assert not trainer.shares_prefix(model, input_ids, attention_mask, 6, False, {"pixel_values": torch.zeros(5, 3)})
    assert not trainer.shares_prefix(model, input_ids, attention_mask, 6, True, {})  # a MoE router loss


def test_with_gradient_checkpointing_only_passes_without_gradients_share(tiny_checkpoint, tmp_path, caplog):
    trainer = tiny_trainer(tiny_checkpoint, tmp_path)
    trainer.model.gradient_checkpointing_enable()  # as Trainer.train does with trainer.activation_checkpointing
    trainer.model.train()

    def shares() -> bool:
        return trainer.shares_prefix(trainer.model, *mixed_batch(), 6, False, {})

    with torch.no_grad():  # the reference and old-policy passes
        assert shares()
    with caplog.at_level(logging.INFO, logger="grpo.training.trainer"):
        assert not shares()  # the policy's loss forward
    assert "speedups.shared_prefix does not apply: gradient checkpointing" in caplog.text
    trainer.model.eval()  # checkpointed layers keep their cache
    assert shares()


def test_with_dropout_only_passes_that_draw_no_masks_share(tiny_checkpoint, tmp_path, caplog):
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.1)
    trainer = tiny_trainer(tiny_checkpoint, tmp_path, lora=lora)
    trainer.model.train()

    def shares() -> bool:
        return trainer.shares_prefix(trainer.model, *mixed_batch(), 6, False, {})

    with caplog.at_level(logging.INFO, logger="grpo.training.trainer"), torch.no_grad():
        assert not shares()  # the old policy's forward draws masks too
    assert "speedups.shared_prefix does not apply: dropout" in caplog.text
    with trainer.model.disable_adapter():  # TRL's reference: the adapter (and its dropout) off
        assert shares()
    trainer.model.eval()
    assert shares()


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ({"lora": PrefixTuningConfig(num_virtual_tokens=2, task_type="CAUSAL_LM")}, "PREFIX_TUNING adapter"),
        ({"model": lambda: MistralForCausalLM(tiny_config(MistralConfig, sliding_window=4))}, "sliding window"),
    ],
    ids=["prefix-tuning", "sliding-window"],
)
def test_trainers_it_does_not_apply_to(tiny_checkpoint, tmp_path, caplog, setting, reason):
    if "model" in setting:
        setting = {"model": setting["model"]()}
    with caplog.at_level(logging.INFO, logger="grpo.training.trainer"):
        trainer = tiny_trainer(tiny_checkpoint, tmp_path, **setting)
    assert not trainer.shared_prefix
    assert "speedups.shared_prefix does not apply: " in caplog.text and reason in caplog.text


def gpt2_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(vocab_size=103, n_embd=32, n_layer=1, n_head=2, pad_token_id=PAD))


def test_models_it_does_not_apply_to(tiny_checkpoint):
    assert "model type 'gpt2': verified are llama" in why_not_model(gpt2_model())
    llama = LlamaForCausalLM(tiny_config(LlamaConfig))
    assert why_not_model(llama) is None
    llama.config._attn_implementation = "flash_attention_2"
    assert "attention 'flash_attention_2'" in why_not_model(llama)


def test_switched_off_it_leaves_trls_forward(tiny_checkpoint, tmp_path):
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_checkpoint),
        processing_class=AutoTokenizer.from_pretrained(tiny_checkpoint),
        reward_funcs=[digit_share_reward],
        args=GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, report_to=[],
                        use_cpu=True, bf16=False),  # fmt: skip
        train_dataset=Dataset.from_dict({"prompt": ["1+1=", "2+2="]}),
        shared_prefix=False,
    )
    shapes = rows_seen(trainer)
    trainer._get_per_token_logps_and_entropies(trainer.model, *mixed_batch(), 6)
    assert not trainer.shared_prefix and shapes == [(5, 14)]


def lora_model(checkpoint):
    """The tiny model with a LoRA adapter whose B matrices are non-zero, as after some training."""
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(checkpoint),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))  # fmt: skip
    return model.eval()


def prompts(order: str = "ABABB") -> dict:
    input_ids, attention_mask = mixed_batch(order)
    return {"input_ids": input_ids[:, :-6], "attention_mask": attention_mask[:, :-6]}


def test_greedy_generation_is_the_same_with_each_prompt_prefilled_once(tiny_checkpoint):
    model = lora_model(tiny_checkpoint)
    shapes = []
    model.get_input_embeddings().register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    settings = dict(do_sample=False, max_new_tokens=16, pad_token_id=PAD)
    every_row = model.generate(**prompts(), **settings)
    prefill = shapes[0]
    shapes.clear()
    with shared_prefill(model), merged_lora(model):  # as in training: the merged adapter generates
        shared = model.generate(**prompts(), **settings)
    assert torch.equal(shared, every_row)
    # TRL's way: every row's 8 prompt tokens. Shared: the two prompts' first 7 tokens once, then each row's last one.
    assert prefill == (5, 8) and shapes[:2] == [(2, 7), (5, 1)] and len(shapes) == 17
    assert "generate" not in vars(model)  # the class's generate again


def test_sampling_draws_from_the_same_distributions(tiny_checkpoint):
    model = lora_model(tiny_checkpoint)
    settings = dict(do_sample=True, temperature=0.7, top_k=20, max_new_tokens=12, pad_token_id=PAD,
                    output_logits=True, return_dict_in_generate=True)  # fmt: skip
    torch.manual_seed(3)
    every_row = model.generate(**prompts("BABAB"), **settings)
    torch.manual_seed(3)
    with shared_prefill(model):
        shared = model.generate(**prompts("BABAB"), **settings)
    # The next-token logits of every step (before temperature and top-k), hence the same draws from the same seed.
    for step_logits, shared_logits in zip(every_row.logits, shared.logits, strict=True):
        torch.testing.assert_close(shared_logits, step_logits, atol=1e-5, rtol=0)
    assert torch.equal(shared.sequences, every_row.sequences)


@pytest.mark.parametrize(
    ("order", "settings"),
    [("AB", {}), ("ABABB", {"num_beams": 2}), ("ABABB", {"num_return_sequences": 2, "do_sample": True}),
     ("ABABB", {"use_cache": False}), ("ABABB", {"cache_implementation": "static"})],
    ids=["no repeats", "beams", "several sequences per row", "no cache", "static cache"],
)
def test_generation_it_cannot_share_is_left_as_it_is(tiny_checkpoint, monkeypatch, order, settings):
    model = lora_model(tiny_checkpoint)
    encoded = []
    monkeypatch.setattr(grpo.models.prompt_cache, "encode_prompts", lambda *args, **kwargs: encoded.append(args))
    with shared_prefill(model):
        model.generate(**prompts(order), max_new_tokens=2, pad_token_id=PAD, **settings)
    assert encoded == []


def test_sampling_with_dropout_prefills_once_only_from_merged_adapters(tiny_checkpoint, monkeypatch):
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_checkpoint),
                           LoraConfig(r=4, target_modules=["q_proj"], lora_dropout=0.1)).train()  # fmt: skip
    encoded = []
    monkeypatch.setattr(grpo.models.prompt_cache, "encode_prompts", counting(encoded, encode_prompts))
    with shared_prefill(model):
        model.generate(**prompts(), max_new_tokens=2, pad_token_id=PAD)  # TRL samples in training mode
        with merged_lora(model):  # speedups.merge_lora_for_generation: no dropout in merged layers
            model.generate(**prompts(), max_new_tokens=2, pad_token_id=PAD)
    assert encoded == [5]


def test_a_trainer_prefills_once_where_it_applies(tiny_checkpoint, tmp_path):
    assert tiny_trainer(tiny_checkpoint, tmp_path).shared_prefill
    assert not tiny_trainer(tiny_checkpoint, tmp_path, cache_implementation="static").shared_prefill
    gpt2 = tiny_trainer(tiny_checkpoint, tmp_path, model=gpt2_model(), lora=LoraConfig(r=4, target_modules=["c_attn"]))
    assert not gpt2.shared_prefill and not gpt2.shared_prefix


def counting(rows: list, function):
    """`function`, recording at each call the rows of its second argument (the input ids)."""

    def counted(*args, **kwargs):
        rows.append(len(args[1]))
        return function(*args, **kwargs)

    return counted


def logged(trainer, key: str) -> list[float]:
    return [entry[key] for entry in trainer.state.log_history if key in entry]


@pytest.mark.slow
def test_a_short_training_is_the_same_with_and_without_it(tiny_checkpoint, tmp_path, monkeypatch):
    # Two prompts per step; one generation for two steps (shuffled, and scored by the old policy too); a KL term (the
    # reference's forward); no dropout nor gradient checkpointing, so the policy's loss forward shares too.
    settings = ["trainer.per_device_train_batch_size=4", "trainer.steps_per_generation=2", "trainer.beta=0.04",
                "model.lora.lora_dropout=0.0", "model.gradient_checkpointing=false", "trainer.save_strategy=no"]
    scored, prefilled = [], []
    monkeypatch.setattr(grpo.training.trainer, "score_with_shared_prompts", counting(scored, score_with_shared_prompts))
    monkeypatch.setattr(grpo.models.prompt_cache, "encode_prompts", counting(prefilled, encode_prompts))
    runs = {}
    for shared in ("true", "false"):
        overrides = [*tiny_overrides(tiny_checkpoint, tmp_path / shared), DIGIT_REWARD, *settings,
                     f"speedups.shared_prefix={shared}", f"speedups.shared_prefill={shared}"]  # fmt: skip
        runs[shared] = train(compose_config(*overrides))
    # Old policy and reference over the generation batch of 8, then the loss over each step's 4 rows; one generation.
    assert scored == [8, 8, 4, 4] and prefilled == [8]
    for key in ("loss", "kl", "entropy", "grad_norm", "reward", "reward_std", "completions/mean_length"):
        with_it, without = logged(runs["true"], key), logged(runs["false"], key)
        assert with_it and all(math.isfinite(value) for value in with_it)
        assert with_it == pytest.approx(without, abs=1e-5, rel=1e-4), key
    assert len(logged(runs["true"], "loss")) == 2
