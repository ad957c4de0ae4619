"""Read JSON-lines files with errors that point at the offending line."""

from __future__ import annotations

import json
from pathlib import Path

from grpo.errors import ConfigError


def read_jsonl(path: str | Path, key: str, required: tuple[str, ...]) -> list[dict]:
    """Rows of a JSONL file, each a JSON object holding every `required` field.

    `key` is the config key that named the file, so errors say which setting to fix.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{key}={path}: no such file. Point {key} at a JSON-lines file.")
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{key}={path}: line {number} is not valid JSON ({error.msg}).") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{key}={path}: line {number} is not a JSON object.")
            missing = [field for field in required if field not in row]
            if missing:
                raise ConfigError(
                    f"{key}={path}: line {number} lacks the field(s) {missing}; every line needs {list(required)}."
                )
            rows.append(row)
    if not rows:
        raise ConfigError(f"{key}={path}: the file is empty; it needs one JSON object per line.")
    return rows
