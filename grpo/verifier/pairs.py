"""The verifier's training data: (chosen, rejected) pairs of answers to one problem, and labelled answers.

A pairs file holds JSON lines of `{prompt, chosen, rejected}` (and `origin`: "sampled" or "swapped"); an answers file
`{prompt, completion, correct}`, the answers the threshold is calibrated on."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

PAIR_FIELDS = ("prompt", "chosen", "rejected")


ANSWER_FIELDS = ("prompt", "completion", "correct")


def read_pairs(path: str) -> list[dict]:
    """`{prompt, chosen, rejected}` rows (strings) from a JSON-lines file, with the `origin` train_rm writes
    ("sampled" or "swapped") where there is one; an error names the line."""
    from grpo.data.jsonl import read_jsonl

    rows = read_jsonl(path, key="rm.pairs", required=PAIR_FIELDS, check=_pair_problem)
    return [{field: row[field] for field in (*PAIR_FIELDS, "origin") if field in row} for row in rows]


def _pair_problem(row: dict) -> str | None:
    empty = [field for field in PAIR_FIELDS if not isinstance(row[field], str) or not row[field].strip()]
    return f"has no text in '{empty[0]}'" if empty else None


def read_answers(path: str) -> list[dict]:
    """`{prompt, completion, correct}` rows (the answers.jsonl train_rm writes when it samples) to calibrate the
    threshold on; an error names the line."""
    from grpo.data.jsonl import read_jsonl

    rows = read_jsonl(path, key="rm.answers", required=ANSWER_FIELDS, check=_answer_problem)
    return [{field: row[field] for field in ANSWER_FIELDS} for row in rows]


def _answer_problem(row: dict) -> str | None:
    if not isinstance(row["prompt"], str) or not isinstance(row["completion"], str):
        return "needs text in 'prompt' and 'completion'"
    return None if isinstance(row["correct"], bool) else "needs true or false in 'correct'"


def pairs_of(question: str, answers: Sequence[dict], limit: int, rng: random.Random) -> list[dict]:
    """Up to `limit` (chosen, rejected) pairs of distinct answers where the chosen one earned the higher reward."""
    unique = {answer["completion"]: answer["reward"] for answer in answers}
    ranked = [(chosen, rejected) for chosen, high in unique.items() for rejected, low in unique.items() if high > low]
    rng.shuffle(ranked)
    return [
        {"prompt": question, "chosen": chosen, "rejected": rejected, "origin": "sampled"}
        for chosen, rejected in ranked[:limit]
    ]


def split_by_prompt(pairs: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Held-out pairs come from prompts the reward model never trains on, so their accuracy measures ranking
    unseen problems, not remembering seen answers."""
    prompts = sorted({pair["prompt"] for pair in pairs})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: max(1, round(len(prompts) * fraction))]) if len(prompts) > 1 else set()
    return [p for p in pairs if p["prompt"] not in held], [p for p in pairs if p["prompt"] in held]


def as_chats(pair: dict) -> dict:
    question = {"role": "user", "content": pair["prompt"]}
    return {
        "chosen": [question, {"role": "assistant", "content": pair["chosen"]}],
        "rejected": [question, {"role": "assistant", "content": pair["rejected"]}],
    }


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))

