"""Read JSON-lines files, reporting bad rows by line number and refusing or skipping them (`dataset.bad_rows`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from grpo.errors import ConfigError

log = logging.getLogger(__name__)
BAD_ROWS = ("error", "skip")


def read_jsonl(
    path: str | Path,
    key: str,
    required: tuple[str, ...],
    check: Callable[[dict], str | None] | None = None,
    bad_rows: str = "error",
) -> list[dict]:
    """Rows of a JSONL file, each a JSON object holding every `required` field and passing `check`.

    `key` is the config key that named the file, so errors say which setting to fix. `check` returns what is
    wrong with a row, or None. Bad rows stop the run (`bad_rows="error"`) or are skipped with a count in the log.
    """
    if bad_rows not in BAD_ROWS:
        raise ConfigError(f"dataset.bad_rows={bad_rows}: choose one of {list(BAD_ROWS)}.")
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{key}={path}: no such file. Point {key} at a JSON-lines file.")
    rows, problems = [], []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row, problem = _parse(line, required, check)
            if problem:
                problems.append(f"line {number} {problem}")
            else:
                rows.append(row)
    if not rows and not problems:
        raise ConfigError(f"{key}={path}: the file is empty; it needs one JSON object per line.")
    _report(problems, key, path, bad_rows)
    if not rows:
        raise ConfigError(f"{key}={path}: every row was bad and skipped; nothing is left to train on.")
    return rows


def _parse(line: str, required: tuple[str, ...], check) -> tuple[dict | None, str | None]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"is not valid JSON ({error.msg})"
    if not isinstance(row, dict):
        return None, "is not a JSON object"
    missing = [field for field in required if field not in row]
    if missing:
        return None, f"lacks the field(s) {missing}; every line needs {list(required)}"
    problem = check(row) if check else None
    return (None, problem) if problem else (row, None)


def _report(problems: list[str], key: str, path: Path, bad_rows: str) -> None:
    if not problems:
        return
    source = f"{key}={path}"
    more = f" ({len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
    if bad_rows == "error":
        # Only the dataset group has the option to skip (other files, e.g. rm.pairs, must be fixed).
        skip = ", or skip bad rows with dataset.bad_rows=skip" if key.startswith("dataset.") else ""
        raise ConfigError(f"{source}: {problems[0]}{more}. Fix the file{skip}.")
    log.warning("%s: skipped %d bad rows: %s", source, len(problems), "; ".join(problems[:5]) + ("; ..." if more else ""))
