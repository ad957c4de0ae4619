"""The private TRL code our speed-ups wrap (grpo/training/trainer.py, grpo/training/speedups.py), pinned to the source
they were tested with. pyproject.toml bounds trl to that minor release; a patch release that changes one of these
still installs, and then this test fails and names what to re-check, instead of a speed-up silently training
differently."""

import hashlib
import inspect

import pytest
import trl
import trl.trainer.utils as trl_utils

# The sha256 (first 16 hex digits) of each wrapped function's source in trl 1.16.0.
TESTED_SOURCES = {
    "GRPOTrainer._generate_single_turn": "e0f02e4fc094cefd",  # speedups.merge_lora_for_generation and contiguous_head
    # speedups.score_completions_only, speedups.shared_prefix (which returns what it returns)
    "GRPOTrainer._get_per_token_logps_and_entropies": "ea73c3909275851d",
    "GRPOTrainer._generate_and_score_completions": "1fa48922792dcd5c",  # filter_groups' loss normaliser
    "GRPOTrainer._compute_loss": "80295546bbdbf6f7",  # speedups.skip_zero_advantage, filter_groups
    "trl.trainer.utils._use_triton": "f0510984e05ac05c",  # speedups.score_completions_only patches it on CPU
    # speedups.shared_prefix scores through its forward, passing the prompts' cache along with the labels
    "trl.trainer.utils.add_fused_lm_head": "422d009f04b66659",
}


def source_of(name: str) -> str:
    owner, attribute = name.rsplit(".", 1)
    target = getattr(trl.GRPOTrainer if owner == "GRPOTrainer" else trl_utils, attribute)
    return inspect.getsource(target)


@pytest.mark.parametrize("name", TESTED_SOURCES)
def test_wrapped_trl_code_is_what_the_speedups_were_tested_with(name):
    digest = hashlib.sha256(source_of(name).encode()).hexdigest()[:16]
    assert digest == TESTED_SOURCES[name], (
        f"trl {trl.__version__} changed {name}, which grpo's speed-ups wrap. Re-run tests/test_trainer.py (same "
        "training with and without each speed-up), read the change, then update TESTED_SOURCES and the trl bound in "
        "pyproject.toml."
    )
