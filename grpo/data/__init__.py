"""Datasets: a loader (`dataset._target_`) gives `{question[, answer]}` rows; we add the chat `prompt` TRL expects."""

from __future__ import annotations

from datasets import Dataset
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from grpo.config.targets import check_call, takes_argument
from grpo.config.values import is_whole_number
from grpo.data.prompts import to_chat
from grpo.errors import ConfigError

# Keys of a dataset preset that shape prompts and completions rather than choose the rows; the rest go to the loader.
NON_LOADER_KEYS = ("prompt", "limit", "max_completion_length")


def build_dataset(cfg: DictConfig) -> Dataset:
    """Rows with `prompt` (chat messages) and, when the loader gives one, `answer` (gold); at most `cfg.limit` rows.

    Open-ended instructions have no gold answer; rewards that need one (accuracy) need a dataset that has it.
    """
    if cfg.limit is not None and not is_whole_number(cfg.limit, at_least=1):
        raise ConfigError(
            f"dataset.limit={cfg.limit!r} (mode.train_examples, or eval.examples for held-out rows): "
            "the number of rows to use (1 or more), or null for all."
        )
    loader = OmegaConf.create({key: value for key, value in cfg.items() if key not in NON_LOADER_KEYS})
    if "split" in loader and not takes_argument("dataset", loader, "split"):
        raise ConfigError(
            f"dataset.split={loader.split}: {cfg._target_} has no splits (prompts without gold answers, none held "
            "out), so there is nothing to evaluate on; use a dataset with a held-out split (dataset=arithmetic, "
            "dataset=gsm8k)."
        )
    check_call("dataset", loader)  # a misspelt loader argument is named here, not in instantiate's traceback
    try:
        rows = instantiate(loader, _convert_="all")
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):  # the loader's own message names the key and the fix
            raise error.__cause__ from None
        raise ConfigError(f"dataset._target_={cfg._target_}: {str(error.__cause__ or error).splitlines()[0]}") from None
    if "question" not in rows.column_names:
        raise ConfigError(f"dataset._target_={cfg._target_} returned rows without a 'question' column.")
    if cfg.limit is not None:
        rows = rows.select(range(min(cfg.limit, len(rows))))
    system = cfg.prompt.system
    examples = OmegaConf.to_container(cfg.prompt.examples)
    _check_examples(examples)
    return rows.map(
        lambda row: {"prompt": to_chat(row["question"], system, examples)},
        remove_columns=[c for c in rows.column_names if c != "answer"],
    )


def _check_examples(examples: object) -> None:
    """Each few-shot example is a user turn and the reply the model should copy: both strings."""
    if not isinstance(examples, list):
        raise ConfigError(f"dataset.prompt.examples={examples!r}: a list of {{question, completion}}, or [] for none.")
    for index, example in enumerate(examples):
        turns = ("question", "completion")
        if not isinstance(example, dict) or not all(isinstance(example.get(turn), str) for turn in turns):
            raise ConfigError(
                f"dataset.prompt.examples[{index}]={example!r}: each example needs a `question` and a `completion` "
                "(strings), e.g. {question: What is 6 * 3?, completion: '6 * 3 = 18. <answer>18</answer>'}."
            )
