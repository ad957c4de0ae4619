"""speedups.keep_freed_memory (grpo/training/memory.py): steps that allocate and free large tensors reuse the process's
pages instead of faulting in fresh ones, and training applies it unless switched off."""

import subprocess
import sys

import pytest
from conftest import DIGIT_REWARD, compose_config, tiny_overrides

import grpo.training.memory
from grpo.train import train
from grpo.training.memory import libc_is_glibc

# In a fresh process each, since the setting holds for the whole process: ten "steps" that each compute three 64 MB
# tensors (16384 pages of 4 KB each) and free them; the page faults of the last five.
STEP_FAULTS = """
import resource, sys, torch
from grpo.training.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() is None
x = torch.ones(2**24)
def step():
    y = x * 2.0
    z = y.exp()
    return (z - y).sum()
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def step_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", STEP_FAULTS, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not libc_is_glibc(), reason="glibc's malloc options")
def test_steps_reuse_the_pages_of_freed_tensors_instead_of_faulting_in_fresh_ones():
    pages = 3 * 5 * 2**24 * 4 // 4096
    assert step_faults("default") > pages * 0.9  # glibc unmapped every freed tensor: all its pages fault again
    # The heap grows to a step's peak over the first steps (sizes fragment it a little); then pages are reused.
    assert step_faults("keep") < pages * 0.25


@pytest.mark.slow
def test_training_keeps_freed_memory_unless_switched_off(tiny_checkpoint, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grpo.training.memory, "keep_freed_memory", lambda: calls.append(1))
    train(compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "on", steps=1), DIGIT_REWARD))
    assert len(calls) == 1
    off = compose_config(*tiny_overrides(tiny_checkpoint, tmp_path / "off", steps=1), DIGIT_REWARD,
                         "speedups.keep_freed_memory=false")  # fmt: skip
    train(off)
    assert len(calls) == 1
