"""Settings a user plausibly mistypes, over every config group: each is refused before any weights load, with one
message that names the key. In-process `train()` with the model loader replaced by a tripwire, so a row that gets
past the checks fails the test instead of loading a model."""

import pytest

import grpo.model
import grpo.train
from conftest import compose_config, tiny_overrides
from grpo.errors import ConfigError

RM = "reward=rm_ensemble"
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
    (["model.id=/no/such/checkpoint"], "model.id=/no/such/checkpoint"),
    (["model.dtype=bf16"], "model.dtype='bf16': choose one of ['float32', 'bfloat16'"),
    # evaluation and the run's own keys
    (["objective=rewards/no_such/mean"], "objective"),
    (["eval.every_n_steps=-1"], "eval.every_n_steps=-1"),
    (["eval.examples=0"], "eval.examples=0"),
    (["eval.after_training=maybe"], "eval.after_training='maybe'"),
    (["eval.after_training=true", "eval.split=validation"], "eval.split=validation (the held-out rows): dataset.split"),
    (["resume=/no/such/run"], "resume=/no/such/run"),
    (["filter_groups=yes"], "filter_groups='yes': expected true or false, e.g. filter_groups=true"),
    (["speedups.merge_lora_for_generation=1"], "speedups.merge_lora_for_generation=1: expected true or false"),
]


@pytest.mark.parametrize("overrides, message", ROWS, ids=[" ".join(row[0])[:60] for row in ROWS])
def test_a_bad_setting_is_refused_before_weights_load(overrides, message, tiny_checkpoint, tmp_path, monkeypatch):
    def tripwire(*args, **kwargs):
        raise AssertionError(f"weights were loaded although {overrides} should have been refused")

    monkeypatch.setattr(grpo.model, "load_model", tripwire)
    tiny = tiny_overrides(tiny_checkpoint, tmp_path / "run")
    if any(override.startswith("dataset=") for override in overrides):  # another dataset: not the tiny one's keys
        tiny = [override for override in tiny if not override.startswith("dataset")]
    cfg = compose_config(*tiny, *overrides)
    with pytest.raises(ConfigError) as refused:
        grpo.train.train(cfg)
    assert message in str(refused.value)
