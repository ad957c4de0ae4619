"""Getting the text a reward should look at out of a TRL completion.

TRL hands reward functions either plain strings (standard datasets) or message lists like
``[{"role": "assistant", "content": "..."}]`` (conversational datasets). Everything here is total:
malformed input gives ``""`` or ``None``, never an exception, because one odd sample must not crash a
training step.
"""

from __future__ import annotations

import re
from typing import Any

# Only the tail of an answer block matters ("... so the answer is 42"); capping it bounds the work
# every later parsing step can do, whatever the model wrote.
MAX_ANSWER_CHARS = 10_000

# Literal patterns (no quantifiers), so scanning is linear in the text length.
OPEN_TAG = re.compile(re.escape("<answer>"), re.IGNORECASE)
CLOSE_TAG = re.compile(re.escape("</answer>"), re.IGNORECASE)


def _content_text(content: Any) -> str:
    # Multimodal chat templates give content as a list of {"type": "text", "text": ...} parts.
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text":
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
        return "".join(texts)
    return ""


def completion_text(completion: Any) -> str:
    """Return the assistant text of one TRL completion (a string or a list of chat messages).

    Assistant messages (or messages without a role) are concatenated; other roles such as tool results
    are skipped, so a tool's output can never be mistaken for the model's answer. Malformed input -> "".
    """
    try:
        if isinstance(completion, str):
            return completion
        if isinstance(completion, dict):
            completion = [completion]
        if not isinstance(completion, (list, tuple)):
            return ""
        return "".join(
            _content_text(message.get("content"))
            for message in completion
            if isinstance(message, dict) and message.get("role", "assistant") == "assistant"
        )
    except Exception:  # a broken custom mapping must cost one sample, not the step
        return ""


def prompt_text(prompt: Any) -> str:
    """Return the instruction of one TRL prompt: the last user message of a chat prompt, or a plain-text prompt.

    A judge (a reward model) should see what was asked, not the policy's system prompt or few-shot example turns.
    Malformed input -> "".
    """
    try:
        if isinstance(prompt, str):
            return prompt
        if not isinstance(prompt, (list, tuple)):
            return ""
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return _content_text(users[-1].get("content")) if users else ""
    except Exception:  # a broken custom mapping must cost one sample, not the step
        return ""


def clip_tail(text: str, limit: int) -> str:
    """Keep about the last ``limit`` characters of ``text``, starting after a whitespace so that no
    number is cut in half (a cut "12345" must not read as "45"); "" if the tail has no whitespace."""
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    if text[-limit - 1].isspace():
        return tail
    boundary = re.search(r"\s", tail)
    return tail[boundary.start() :] if boundary else ""


def _last_match_end(pattern: re.Pattern[str], text: str, end: int) -> int | None:
    last = None
    for match in pattern.finditer(text, 0, end):
        last = match
    return None if last is None else last.end()


def extract_answer(text: str) -> str | None:
    """Return the stripped content of the last ``<answer>...</answer>`` block, or None if there is none.

    Tags are matched case-insensitively. The block is the last opening tag that has a closing tag after
    it, up to the first closing tag that follows it, so nested tags give the innermost content. An empty
    block gives "". Only about the last ``MAX_ANSWER_CHARS`` characters of the content are kept.
    """
    if not isinstance(text, str):
        return None
    closes = [m.start() for m in CLOSE_TAG.finditer(text)]
    if not closes:
        return None
    start = _last_match_end(OPEN_TAG, text, closes[-1])
    if start is None:
        return None
    end = next(c for c in closes if c >= start)
    return clip_tail(text[start:end], MAX_ANSWER_CHARS).strip()
