"""The trained policy written to the run dir: the adapter (or full model) with its tokenizer, optionally merged."""

from __future__ import annotations

import logging
from pathlib import Path

from grpo.runs.layout import FINAL_DIR, MERGED_DIR

log = logging.getLogger(__name__)


def save(trainer, run_dir: Path, merged: bool) -> Path:
    """Write the final adapter (or full model) with its tokenizer to `final/`, and optionally a merged model."""
    final = run_dir / FINAL_DIR
    trainer.save_model(str(final))
    log.info("final model: %s", final)
    # Every rank saves (ZeRO-3 and FSDP gather weights collectively); one merges. Under ZeRO-3/FSDP rank 0 holds
    # only shards: merge from final/ afterwards with peft's AutoPeftModelForCausalLM instead.
    if merged and trainer.accelerator.is_main_process and hasattr(trainer.model, "merge_and_unload"):
        merged_dir = run_dir / MERGED_DIR
        trainer.model.merge_and_unload().save_pretrained(merged_dir)
        trainer.processing_class.save_pretrained(merged_dir)
        log.info("merged model: %s", merged_dir)
    return final

