"""Settings a user plausibly mistypes, over every config group: each is refused before any weights load, with one
message that names the key. In-process `train()` with the model loader replaced by a tripwire, so a row that gets
past the checks fails the test instead of loading a model."""

from pathlib import Path

import pytest
from conftest import CONF_DIR, compose_config, tiny_overrides
from hydra import compose, initialize_config_dir

import grpo.evaluate
import grpo.models.load
import grpo.train
import grpo.train_rm
from grpo.errors import ConfigError

RM = "reward=rm_ensemble"
NOT_A_MODEL = Path(__file__).resolve().parent  # a folder without a config.json
MINE = "+reward.mine={weight: 1, fn: {_target_: %s}}"

ROWS = [
    # reward: entries, weights, the functions' own arguments (names, hinted choices and types, ranges, required)
    (["reward.format.weight=heavy"], "reward.format.weight='heavy' is not a finite number"),
    (["reward.format.weight=nan"], "reward.format.weight=nan is not a finite number"),
    (["reward.format=null", "reward.accuracy=null"], "no rewards are configured"),
    (["reward.format.fn._target_=grpo.rewards.no_such"], "reward.format.fn._target_=grpo.rewards.no_such cannot be"),
    ([RM, "reward.length.fn.unit=bytes"], "reward.length.fn.unit='bytes': choose one of ['tokens', 'chars']"),
    ([RM, "reward.length.fn.min_length=100", "reward.length.fn.max_length=10"], "need 0 <= min_length <= max_length"),
    ([RM, "reward.length.fn.tolerance=abc"], "reward.length.fn.tolerance='abc': must be a number"),
    ([RM, "+reward.length.fn.lenght=5"], "reward.length.fn.lenght: grpo.rewards.length.length_reward has no argument"),
    ([RM, "reward.reward_model.fn.normalize=softmax"], "reward.reward_model.fn.normalize='softmax': choose one of"),
    ([RM, "reward.reward_model.fn.batch_size=0"], "reward.reward_model.fn.batch_size=0: must be a positive integer"),
    ([RM, "reward.reward_model.fn.input_format=template", "reward.reward_model.fn.template='{completion}'"],
     "reward.reward_model.fn.template='{completion}': needs exactly the fields"),
    ([RM, "reward.reward_model.fallback.repetition.fn.n=0"], "reward.reward_model.fallback.repetition.fn.n=0"),
    ([RM, "reward.safety.fn.classifier=perspective"], "reward.safety.fn.classifier='perspective': choose one of"),
    (["+reward.mine={weight: 1, fn: {_target_: grpo.rewards.format_reward, _partial_: true, strict: true}}"],
     "reward.mine.fn.strict: grpo.rewards.format.format_reward has no argument 'strict'"),
    ([MINE % "grpo.rewards.RewardModelReward"], "reward.mine.fn.model: grpo.rewards.reward_model.RewardModelReward"),
    ([MINE % "os.sep"], "reward.mine.fn._target_=os.sep is not a function or class"),
    (["dataset=instructions"], "reward.accuracy needs the dataset column(s) ['answer']"),
    (["reward=verifier"], "reward.reward_model.fn.model: this preset leaves it for you to set"),
    (["reward.format.weight=0", "reward.accuracy.weight=0"],
     "reward.format.weight=0, reward.accuracy.weight=0: with every reward weighted 0"),
    (["reward=math_closeness", "reward.format.weight=0", "reward.accuracy.weight=0", "reward.closeness.weight=0"],
     "reward.format.weight=0, reward.accuracy.weight=0, reward.closeness.weight=0: with every reward weighted 0"),
    # dataset
    (["dataset.split=validation"], "dataset.split"),
    (["dataset.min_operand=30"], "dataset.min_operand"),
    (["dataset.num_operations=0"], "dataset.num_operations"),
    (["dataset.operators=[/]"], "dataset.operators"),
    (["+dataset.max_operant=50"], "dataset.max_operant: grpo.data.arithmetic.load_arithmetic has no argument"),
    (["dataset.size=many"], "dataset.size='many'"),
    (["dataset.heldout_fraction=1.5"], "dataset.heldout_fraction"),
    # trainer: groups and batches
    (["trainer.num_generations=3", "trainer.per_device_train_batch_size=4"], "not divisible by trainer.num_gen"),
    (["trainer.num_generations=1"], "trainer.num_generations=1"),
    (["trainer.generation_batch_size=20", "trainer.steps_per_generation=2"], "give only one of them"),
    (["trainer.auto_find_batch_size=true"], "trainer.auto_find_batch_size: halving the batch"),
    (["trainer.reward_weights=[1,2]"], "reward.<name>.weight"),
    (["trainer.max_steps=0"], "trainer.max_steps=0: steps to train (1 or more), or -1"),
    (["trainer.save_steps=0"], "trainer.save_steps=0: must be above 0"),
    (["trainer.logging_steps=0"], "trainer.logging_steps=0: must be above 0"),
    (["mode.train_examples=-5"], "dataset.limit=-5 (mode.train_examples"),
    # trainer: values GRPOConfig accepts and the first step would fail on (or silently act on)
    (["trainer.loss_type=ppo"], "trainer.loss_type='ppo': one of grpo, dr_grpo, dapo"),
    (["trainer.scale_rewards=std"], "trainer.scale_rewards='std': one of group, batch, none"),
    (["trainer.temperature=0"], "trainer.temperature=0: must be above 0"),
    (["trainer.beta=-0.04"], "trainer.beta=-0.04: must be at least 0"),
    (["trainer.top_p=1.5"], "trainer.top_p=1.5: must be above 0 and at most 1"),
    (["trainer.learning_rate=-1e-4"], "trainer.learning_rate=-0.0001: must be above 0"),
    (["dataset.max_completion_length=0"], "dataset.max_completion_length=0 (trainer.max_completion_length)"),
    (["trainer.lr_scheduler_type=cosine_annealing"], "trainer.lr_scheduler_type='cosine_annealing': one of linear"),
    (["dataset.prompt.examples=[{question: What is 1 + 1?}]"], "dataset.prompt.examples"),
    # model
    (["model.id=/no/such/checkpoint"], "model.id=/no/such/checkpoint: no such folder"),
    (["model.id=123"], "model.id=123: a Hub id (org/name) or a local model folder"),
    ([f"model.id={NOT_A_MODEL}"], f"model.id={NOT_A_MODEL} is not a model folder"),
    (["model.dtype=bf16"], "model.dtype='bf16': choose one of ['float32', 'bfloat16'"),
    (["model.trust_remote_code=maybe"], "model.trust_remote_code='maybe': expected true or false"),
    (["model.gradient_checkpointing=maybe"], "model.gradient_checkpointing='maybe': expected true or false"),
    (["model.lora.r=0"], "model.lora.r=0: the adapter's rank"),
    (["model.lora.r=-4"], "model.lora.r=-4: the adapter's rank"),
    (["model.lora.r=1.5"], "model.lora.r=1.5: the adapter's rank"),
    (["model.lora.lora_alpha=0"], "model.lora.lora_alpha=0: must be above 0"),
    (["model.lora.lora_dropout=1.5"], "model.lora.lora_dropout=1.5: a probability"),
    (["model.lora.target_modules=[nonexistent]"], "model.lora.target_modules=['nonexistent']: no layer of"),
    (["model.lora.target_modules=nonexistent"], "model.lora.target_modules=nonexistent: no layer of"),
    (["model.lora.task_type=SEQ_CLS"], "model.lora.task_type='SEQ_CLS': the policy is a causal LM"),
    # logger
    (["logger.report_to=[tensorbord]"], "logger.report_to: 'tensorbord' is not an integration"),
    (["logger.completions_every_n_steps=-1"], "logger.completions_every_n_steps=-1"),
    (["logger=wandb", "logger.wandb.mode=bogus"], "logger.wandb.mode='bogus': choose one of"),
    # evaluation and the run's own keys
    (["objective=rewards/no_such/mean"], "objective"),
    (["eval.every_n_steps=-1"], "eval.every_n_steps=-1"),
    (["eval.examples=0"], "eval.examples=0"),
    (["eval.after_training=maybe"], "eval.after_training='maybe'"),
    (["eval.after_training=true", "eval.split=validation"], "eval.split=validation (the held-out rows): dataset.split"),
    (["dataset=instructions", "eval.every_n_steps=1"], "eval.every_n_steps: grpo.data.instructions.load_instr"),
    ([RM, "dataset=instructions", "eval.after_training=true"], "eval.after_training: grpo.data.instructions.load_ins"),
    (["eval.every_n_steps=1", "eval.path=held_out.jsonl"], "eval.path=held_out.jsonl: grpo.data.arithmetic.load_arith"),
    (["seed=abc"], "seed='abc': a whole number from 0 to 2**32 - 1"),
    (["seed=-1"], "seed=-1: a whole number from 0 to 2**32 - 1"),
    (["resume=/no/such/run"], "resume=/no/such/run"),
    (["filter_groups=yes"], "filter_groups='yes': expected true or false, e.g. filter_groups=true"),
    (["speedups.merge_lora_for_generation=1"], "speedups.merge_lora_for_generation=1: expected true or false"),
]


@pytest.mark.parametrize("overrides, message", ROWS, ids=[" ".join(row[0])[:60] for row in ROWS])
def test_a_bad_setting_is_refused_before_weights_load(overrides, message, tiny_checkpoint, tmp_path, monkeypatch):
    def tripwire(*args, **kwargs):
        raise AssertionError(f"weights were loaded although {overrides} should have been refused")

    monkeypatch.setattr(grpo.models.load, "load_model", tripwire)
    tiny = tiny_overrides(tiny_checkpoint, tmp_path / "run")
    if any(override.startswith("dataset=") for override in overrides):  # another dataset: not the tiny one's keys
        tiny = [override for override in tiny if not override.startswith("dataset")]
    cfg = compose_config(*tiny, *overrides)
    with pytest.raises(ConfigError) as refused:
        grpo.train.train(cfg)
    assert message in str(refused.value)


# python -m grpo.train_rm: refused by check_verifier, before the policy samples a single answer.
RM_ROWS = [
    (["model.lora.r=0"], "model.lora.r=0: the adapter's rank"),
    (["model.lora.lora_dropout=1"], "model.lora.lora_dropout=1: a probability"),
    (["seed=abc"], "seed='abc'"),
    (["reward.accuracy.weight=0"], "reward.format.weight=0, reward.accuracy.weight=0: with every reward weighted 0"),
]


@pytest.mark.parametrize("overrides, message", RM_ROWS, ids=[" ".join(row[0]) for row in RM_ROWS])
def test_a_bad_reward_model_setting_is_refused_before_sampling(overrides, message, tmp_path, monkeypatch):
    def tripwire(*args, **kwargs):
        raise AssertionError(f"the policy was loaded although {overrides} should have been refused")

    monkeypatch.setattr(grpo.models.load, "load_model", tripwire)
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose(config_name="train_rm", overrides=[f"trainer.output_dir={tmp_path}", *overrides])
    with pytest.raises(ConfigError) as refused:
        grpo.train_rm.train_reward_model(cfg)
    assert message in str(refused.value)


def test_a_bad_seed_is_refused_by_the_evaluation(tmp_path, monkeypatch):
    (tmp_path / "run" / "final").mkdir(parents=True)
    (tmp_path / "run" / "final" / "adapter_config.json").write_text("{}")
    monkeypatch.setattr(grpo.models.load, "load_model", None)
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose(config_name="evaluate", overrides=[f"eval.run={tmp_path / 'run'}", "seed=abc"])
    with pytest.raises(ConfigError, match=r"seed='abc': a whole number"):
        grpo.evaluate.evaluate(cfg)
