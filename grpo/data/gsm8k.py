"""GSM8K (Cobbe et al., 2021, arXiv:2110.14168): grade-school math word problems with a numeric gold answer.

Each source row has `question` and `answer`, a worked solution that ends with `#### <number>`; we keep the number.
"""

from __future__ import annotations

from datasets import Dataset, load_dataset

from grpo.data.jsonl import read_jsonl
from grpo.errors import ConfigError

OFFLINE_HINT = "Offline, use a local copy with dataset.path=FILE.jsonl or the embedded task dataset=arithmetic."


def gold_answer(solution: str) -> str | None:
    """The number after `####` in a GSM8K solution, without thousands commas; None when there is no marker."""
    _, marker, tail = solution.rpartition("####")
    answer = tail.strip().replace(",", "")
    return answer if marker and answer else None


def load_gsm8k(path: str | None, hub_id: str, hub_config: str, split: str) -> Dataset:
    """GSM8K rows as `{question, answer}`, from a local JSONL file (`path`) or the Hugging Face Hub."""
    rows = _read_local(path) if path else _read_hub(hub_id, hub_config, split)
    return Dataset.from_list([{"question": row["question"], "answer": row["answer"]} for row in rows])


def _read_local(path: str) -> list[dict]:
    rows = read_jsonl(path, key="dataset.path", required=("question", "answer"))
    for number, row in enumerate(rows, start=1):
        row["answer"] = gold_answer(str(row["answer"]))
        if row["answer"] is None:
            raise ConfigError(
                f"dataset.path={path}: row {number} has no '#### <number>' gold answer at the end of 'answer'."
            )
    return rows


def _read_hub(hub_id: str, hub_config: str, split: str) -> list[dict]:
    try:
        source = load_dataset(hub_id, hub_config, split=split)
    except Exception as error:  # datasets raises many types for "unreachable" (ConnectionError, OSError, ...)
        raise ConfigError(
            f"dataset.hub_id={hub_id} (config {hub_config}, split {split}) could not be loaded: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}. {OFFLINE_HINT}"
        ) from None
    return [{"question": row["question"], "answer": gold_answer(row["answer"])} for row in source]
