"""Turn a question into the chat messages the policy sees: system prompt, few-shot example turns, the question."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def to_chat(question: str, system: str | None, examples: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """Chat messages for one question.

    Each example is a `{question, completion}` pair shown as a user turn and the assistant's reply. Small models
    copy the answer format from such a turn far more reliably than from an instruction alone (docs/rewards.md).
    """
    messages = [{"role": "system", "content": system}] if system else []
    for example in examples:
        messages.append({"role": "user", "content": example["question"]})
        messages.append({"role": "assistant", "content": example["completion"]})
    messages.append({"role": "user", "content": question})
    return messages
