"""Every preset of every config group composes and builds its objects; bad input fails early with a clear error."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF_DIR, compose_config
from omegaconf import OmegaConf
from peft import LoraConfig
from trl import GRPOConfig

from grpo.config.trainer_fields import check_trainer_overrides
from grpo.data import build_dataset
from grpo.errors import ConfigError
from grpo.models.load import build_lora
from grpo.rewards.build import build_rewards
from grpo.training.grpo_config import build_grpo_config

ROOT = Path(__file__).resolve().parents[1]


def presets(group: str) -> list[str]:
    return sorted(path.stem for path in (Path(CONF_DIR) / group).glob("*.yaml"))


def build(cfg):
    """The cheap objects train() builds before the model loads."""
    rewards = build_rewards(cfg.reward)
    args = build_grpo_config(cfg.trainer, [reward.weight for reward in rewards.values()])
    return rewards, args, build_lora(cfg.model.lora)


@pytest.mark.parametrize("group", ["model", "dataset", "reward", "mode", "trainer", "logger", "algorithm"])
def test_every_preset_composes_and_builds(group, tmp_path, gsm8k_file):
    assert presets(group), f"conf/{group} has no presets"
    for preset in presets(group):
        cfg = compose_config(f"{group}={preset}", f"trainer.output_dir={tmp_path}")
        if "path" in cfg.dataset:  # the default GSM8K preset reads the Hub; tests read a fixture instead
            cfg.dataset.path = str(gsm8k_file)
        if preset == "verifier":  # its model is a folder grpo.train_rm writes: the user must name it
            with pytest.raises(ConfigError, match=r"reward.reward_model.fn.model: this preset leaves it for you"):
                build(cfg)
            continue
        rewards, args, lora = build(cfg)
        assert isinstance(args, GRPOConfig) and args.output_dir == str(tmp_path)
        assert lora is None or isinstance(lora, LoraConfig)
        assert all(callable(reward) for reward in rewards.values())
        assert len(build_dataset(cfg.dataset)) > 0


def test_presets_reach_the_objects(tmp_path):
    cfg = compose_config("model=smollm2-135m", "dataset=arithmetic", "mode=test", f"trainer.output_dir={tmp_path}")
    rewards, args, lora = build(cfg)
    assert {name: reward.weight for name, reward in rewards.items()} == {"format": 0.5, "accuracy": 1.0}
    assert args.reward_weights == [0.5, 1.0]
    assert (args.max_steps, args.save_steps, args.num_generations, args.per_device_train_batch_size) == (100, 50, 10, 10)
    assert args.max_completion_length == cfg.dataset.max_completion_length
    assert args.gradient_checkpointing is False and lora.r == 16
    full = compose_config("mode=full", f"trainer.output_dir={tmp_path}")
    assert (full.trainer.max_steps, full.trainer.save_steps, full.dataset.limit) == (-1, 500, None)


def test_quickstart_pays_for_near_misses_unless_another_reward_is_named(tmp_path):
    quickstart = ("model=smollm2-135m", "dataset=arithmetic", "mode=quickstart", f"trainer.output_dir={tmp_path}")
    rewards, args, _ = build(compose_config(*quickstart))
    assert {name: reward.weight for name, reward in rewards.items()} == {"format": 0.5, "accuracy": 1.0, "closeness": 0.5}
    assert (args.max_steps, args.num_generations, args.per_device_train_batch_size) == (100, 5, 10)
    named = compose_config(*quickstart, "reward=math")  # the command line's reward beats the mode's choice
    assert list(named.reward) == ["format", "accuracy"]


def test_reward_weights_and_trainer_fields_are_overridable(tmp_path):
    cfg = compose_config(
        "reward.format.weight=0.25",
        "reward.accuracy.weight=2",
        "trainer.max_grad_norm=0.5",  # a GRPOConfig field our YAML does not mention
        f"trainer.output_dir={tmp_path}",
    )
    rewards, args, _ = build(cfg)
    assert args.reward_weights == [0.25, 2.0]
    assert args.max_grad_norm == 0.5
    sweep_point = compose_config("trainer.num_generations=4", f"trainer.output_dir={tmp_path}")
    assert build(sweep_point)[1].per_device_train_batch_size == 4  # the batch follows the group size
    assert rewards["format"].__name__ == "format"  # TRL logs rewards/format/mean


def test_reward_entry_can_be_dropped_or_added(tmp_path):
    cfg = compose_config(
        "reward.format=null",
        "+reward.strict_format={weight: 0.1, fn: {_target_: grpo.rewards.format_reward, _partial_: true}}",
        f"trainer.output_dir={tmp_path}",
    )
    rewards, args, _ = build(cfg)
    assert list(rewards) == ["accuracy", "strict_format"] and args.reward_weights == [1.0, 0.1]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["reward.format.weight=heavy"], r"reward.format.weight='heavy' is not a finite number"),
        (["reward.format.fn._target_=grpo.rewards.no_such_reward"], r"reward.format.fn._target_=grpo.rewards.no_such"),
        (["reward.format.fn._target_=math.pi", "~reward.format.fn._partial_"], "reward.format.fn._target_=math.pi"),
        (["reward.format=null", "reward.accuracy=null"], "no rewards are configured"),
        (["trainer.num_generations=3", "trainer.per_device_train_batch_size=4"], "not divisible by trainer.num_gen"),
        (["trainer.num_generations=4", "trainer.per_device_train_batch_size=2", "trainer.generation_batch_size=6"],
         "trainer.generation_batch_size = 6"),
        (["trainer.num_generations=4", "trainer.generation_batch_size=6"], "must be a multiple of trainer.per_device"),
        (["trainer.num_generations=1"], "trainer.num_generations=1"),
        (["trainer.reward_weights=[1,2]"], "reward.<name>.weight"),
    ],
)
def test_bad_rewards_and_batches_are_refused(overrides, message, tmp_path):
    cfg = compose_config(*overrides, f"trainer.output_dir={tmp_path}")
    with pytest.raises(ConfigError, match=message):
        build(cfg)


def test_unknown_trainer_field_suggests_the_closest():
    with pytest.raises(ConfigError, match="trainer.learning_rat: .* Did you mean trainer.learning_rate"):
        check_trainer_overrides(["trainer.learning_rat=1e-5"])
    check_trainer_overrides(["trainer.learning_rate=1e-5", "model=smollm2-135m"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.learning_rate=1e-4", "trainer.learning_rate=1e-5"], "trainer.learning_rate and model.learning_rate"),
        (["dataset.max_completion_length=32", "trainer.max_completion_length=16"], "follows dataset.max_completion"),
        (["mode.max_steps=5", "trainer.max_steps=4"], "trainer.max_steps and mode.max_steps are one setting"),
        (["trainer.gradient_checkpointing=true"], "set model.gradient_checkpointing"),
    ],
)
def test_one_setting_given_twice_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_trainer_overrides(overrides)


def test_either_spelling_of_a_linked_setting_gives_the_same_config(tmp_path):
    via_model = compose_config("model.learning_rate=3e-4", f"trainer.output_dir={tmp_path}")
    via_trainer = compose_config("trainer.learning_rate=3e-4", f"trainer.output_dir={tmp_path}")
    assert build_grpo_config(via_model.trainer, [1.0]).learning_rate == 3e-4
    assert build_grpo_config(via_trainer.trainer, [1.0]).learning_rate == 3e-4


def run_cli(*overrides: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grpo.train", *overrides, f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=gpt5"], "Could not find 'model/gpt5'"),
        (["trainer.lr=1"], "trainer.lr: trl.GRPOConfig has no such field"),
        (["dataset.path=/no/such.jsonl"], "dataset.path=/no/such.jsonl: no such file"),
        (["model.id=no-such-org/no-such-model", "dataset=arithmetic"], "model=smollm2-135m"),
        (["reward.accuracy.weight=[1]"], "reward.accuracy.weight=[1] is not a finite number"),
    ],
)
@pytest.mark.slow
def test_cli_errors_are_one_clear_message_before_the_model_loads(overrides, message, tmp_path):
    result = run_cli(*overrides, tmp_path=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "Loading weights" not in result.stderr


def test_a_failed_run_keeps_what_the_run_dir_held(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint-7").mkdir()
    (run_dir / "notes.txt").write_text("mine")
    result = run_cli("trainer.num_generations=3", "trainer.per_device_train_batch_size=4", tmp_path=tmp_path)
    assert result.returncode != 0
    assert (run_dir / "notes.txt").read_text() == "mine" and (run_dir / "checkpoint-7").is_dir()


def test_a_reward_needing_a_column_the_dataset_lacks_is_refused(tmp_path):
    from grpo.rewards.build import check_reward_columns

    cfg = compose_config("dataset=instructions", f"trainer.output_dir={tmp_path}")
    rewards = build_rewards(cfg.reward)
    with pytest.raises(ConfigError, match=r"reward.accuracy needs the dataset column\(s\) \['answer'\]"):
        check_reward_columns(rewards, set(build_dataset(cfg.dataset).column_names))
    check_reward_columns(rewards, {"prompt", "answer"})


HEAVY_MODULES = ("torch", "transformers", "trl", "peft", "datasets")
# Runs grpo.train's entry point as `python -m grpo.train ARGS` does, then names the heavy modules it imported.
ENTRY_POINT = """
import runpy, sys
sys.argv = ["grpo.train", *sys.argv[1:]]
try:
    runpy.run_module("grpo.train", run_name="__main__")
except SystemExit as stop:
    print(stop, file=sys.stderr)
print("imported:", *[name for name in {heavy} if name in sys.modules])
""".format(heavy=HEAVY_MODULES)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer.lr=1"], "trainer.lr: trl.GRPOConfig has no such field"),
        (["eval.examples=0"], "eval.examples=0"),
        (["reward.accuracy.weight=nan"], "reward.accuracy.weight=nan"),
        (["+reward.length={weight: 1, fn: {_target_: grpo.rewards.length_reward, unit: bytes}}"], "reward.length"),
        (["trainer.num_generations=3", "trainer.per_device_train_batch_size=4"], "not divisible"),
        (["objective=rewards/nothing/mean"], "objective"),
        (["trainer.loss_type=ppo"], "trainer.loss_type='ppo'"),
        (["trainer.optim=adam"], "trainer.optim='adam': one of adamw_torch"),
    ],
)
def test_config_errors_come_before_torch_trl_and_datasets_are_imported(overrides, message, tmp_path, monkeypatch):
    # Importing those takes seconds; the checks do not need them, so a mistake is reported at once.
    import grpo.config.trainer_fields as trainer_fields

    monkeypatch.setenv("GRPO_CACHE", str(tmp_path / "cache"))
    trainer_fields._grpo_config_summary.cache_clear()
    trainer_fields.grpo_config_fields()  # what the first run on a machine writes: TRL's fields, cached
    result = subprocess.run(
        [sys.executable, "-c", ENTRY_POINT, *overrides, f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert message in result.stderr
    assert result.stdout.strip() == "imported:"


def test_cached_trainer_fields_are_trls_own(tmp_path, monkeypatch):
    import grpo.config.trainer_fields as trainer_fields

    monkeypatch.setenv("GRPO_CACHE", str(tmp_path))
    trainer_fields._grpo_config_summary.cache_clear()
    fresh = trainer_fields.grpo_config_fields()
    (cached,) = (tmp_path / "trl-fields").glob("trl-*-transformers-*.json")
    trainer_fields._grpo_config_summary.cache_clear()
    assert trainer_fields.grpo_config_fields() == fresh == trainer_fields._read_grpo_config_fields()
    assert fresh["num_generations"] == GRPOConfig.num_generations and "beta" in fresh
    cached.write_text("{not json")  # a damaged cache file is read from TRL again and rewritten
    trainer_fields._grpo_config_summary.cache_clear()
    assert trainer_fields.grpo_config_fields() == fresh and cached.read_text().startswith("{")


def test_cached_choices_are_the_enums_of_transformers():
    import grpo.config.trainer_fields as trainer_fields

    choices = trainer_fields.grpo_config_choices()
    assert "cosine" in choices["lr_scheduler_type"] and "adamw_torch" in choices["optim"]
    from transformers.trainer_utils import SaveStrategy

    assert choices["save_strategy"] == [member.value for member in SaveStrategy]


def test_listed_trainer_values_are_trls_own():
    # The choices TRL names only in its help text: each listed value must appear there, and every listed field must
    # exist, so a TRL release that renames one breaks this test instead of refusing a valid setting.
    import dataclasses

    from grpo.config.trainer_values import COUNTS, RANGES, TRL_CHOICES, check_trainer_values

    fields = {field.name: field for field in dataclasses.fields(GRPOConfig)}
    for name, allowed in TRL_CHOICES.items():
        help_text = fields[name].metadata["help"]
        for value in allowed:
            if isinstance(value, str):
                assert re.search(rf"\b{value}\b", help_text), (name, value)
    assert set(RANGES) | set(COUNTS) <= set(fields)
    defaults = {name: fields[name].default for name in (*TRL_CHOICES, *RANGES, *COUNTS)}
    check_trainer_values(OmegaConf.create(defaults))  # TRL's own defaults pass
