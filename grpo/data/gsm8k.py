"""GSM8K (Cobbe et al., 2021, arXiv:2110.14168): grade-school math word problems with a numeric gold answer.

Each source row has `question` and `answer`, a worked solution that ends with `#### <number>`; we keep the number.
"""

from __future__ import annotations

from datasets import Dataset

from grpo.data.hub import load_hub_split
from grpo.data.jsonl import read_jsonl
from grpo.rewards import parse_number

OFFLINE_HINT = "Offline, use a local copy with dataset.path=FILE.jsonl or the embedded task dataset=arithmetic."


def gold_answer(solution: str) -> str | None:
    """The number after `####` in a GSM8K solution, without thousands commas; None when there is no marker."""
    _, marker, tail = solution.rpartition("####")
    answer = tail.strip().replace(",", "")
    return answer if marker and answer else None


def load_gsm8k(path: str | None, hub_id: str, hub_config: str, split: str, bad_rows: str = "error") -> Dataset:
    """GSM8K rows as `{question, answer}`, from a local JSONL file (`path`) or the Hugging Face Hub.

    Rows without a numeric gold answer are refused or skipped (`bad_rows`), with their line numbers.
    """
    if path:
        rows = read_jsonl(path, key="dataset.path", required=("question", "answer"), check=_gold_problem, bad_rows=bad_rows)
    else:
        rows = _read_hub(hub_id, hub_config, split)
    return Dataset.from_list([{"question": row["question"], "answer": gold_answer(str(row["answer"]))} for row in rows])


def _gold_problem(row: dict) -> str | None:
    gold = gold_answer(str(row["answer"]))
    if gold is None:
        return "has no '#### <number>' gold answer at the end of 'answer'"
    if parse_number(gold) is None:
        return f"has a gold answer that is not a number ({gold[:40]!r})"
    return None


def _read_hub(hub_id: str, hub_config: str, split: str) -> list[dict]:
    return list(load_hub_split(hub_id, hub_config, split, OFFLINE_HINT))
