"""Open-ended instructions, without gold answers, for training against a reward model (`reward=rm_ensemble`).

Three sources, all giving `{question}` rows: the embedded set (`embedded_prompts.jsonl` next to this file: about 80
varied instructions written for this repo, for offline runs and tests), a local JSON-lines file, or a prompt
column of a Hugging Face Hub dataset (HuggingFaceH4/no_robots by default: ~9.5k human-written instructions).
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from grpo.data.hub import load_hub_split
from grpo.data.jsonl import read_jsonl
from grpo.errors import ConfigError

EMBEDDED = Path(__file__).with_name("embedded_prompts.jsonl")
OFFLINE_HINT = "Offline, use a local file with dataset.path=FILE.jsonl or the embedded set dataset=instructions."


def load_instructions(path: str | None = None) -> Dataset:
    """Instructions as `{question}` rows: the embedded set, or with `path` a JSON-lines file holding one
    `{"question": "..."}` object per line (other fields are ignored)."""
    if path is None and not EMBEDDED.is_file():
        raise ConfigError(f"the embedded prompt set {EMBEDDED} is missing; reinstall grpo (pip install -e .).")
    rows = read_jsonl(path or EMBEDDED, key="dataset.path", required=("question",))
    for number, row in enumerate(rows, start=1):
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise ConfigError(f"dataset.path={path or EMBEDDED}: row {number} has no text in 'question'.")
    return Dataset.from_dict({"question": [row["question"] for row in rows]})


def load_hub_prompts(path: str | None, hub_id: str, hub_config: str | None, split: str, column: str) -> Dataset:
    """Instructions as `{question}` rows from the text column `column` of a Hub dataset, or from a local JSON-lines
    file (`path`, as in load_instructions) instead. Empty prompts are skipped."""
    if path:
        return load_instructions(path)
    source = load_hub_split(hub_id, hub_config, split, OFFLINE_HINT)
    if column not in source.column_names:
        raise ConfigError(f"dataset.column={column}: {hub_id} has no such column; it has {source.column_names}.")
    values = source[column]
    if any(value is not None and not isinstance(value, str) for value in values):
        raise ConfigError(f"dataset.column={column}: {hub_id}'s column holds no plain text; pick one that does.")
    return Dataset.from_dict({"question": [value for value in values if value and value.strip()]})
