"""Loading a dataset split from the Hugging Face Hub, with an error that says what to use offline."""

from __future__ import annotations

from datasets import Dataset, load_dataset

from grpo.errors import ConfigError


def load_hub_split(hub_id: str, hub_config: str | None, split: str, offline_hint: str) -> Dataset:
    """One split of a Hub dataset; when it cannot be loaded, a ConfigError ending with `offline_hint`."""
    try:
        return load_dataset(hub_id, hub_config, split=split)
    except Exception as error:  # datasets raises many types for "unreachable" (ConnectionError, OSError, ...)
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise ConfigError(
            f"dataset.hub_id={hub_id} (config {hub_config}, split {split}) could not be loaded: "
            f"{type(error).__name__}: {first_line}. {offline_hint}"
        ) from None
