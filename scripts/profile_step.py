"""Where a GRPO step's time goes: generation (prefill, decode), the old-policy, reference and policy forwards, the
policy's backward, rewards, and the rest (loss arithmetic, optimizer, data), in seconds per step and share of the step.

Runs `python -m grpo.train` with the given overrides, unchanged except for timers around the TRL methods each part
runs in: `_generate_single_turn` (inside it, every forward of the model: prefill until each row has its first token,
decode after), `_get_per_token_logps_and_entropies` (with gradients: the policy's loss forward; without: the
reference's, when the adapter is off or the model is the reference model, else the old policy's), `_calculate_rewards`
and `accelerator.backward`. A step is timed from the trainer's step-begin to its step-end callback; the first step is
left out of the means when there are more (warm-up). On a GPU each timer synchronises first, which slows the step a
little but puts the time where it is spent.

    python scripts/profile_step.py model=smollm2-135m dataset=arithmetic mode=quickstart trainer.max_steps=3
    python scripts/profile_step.py model=smollm2-135m dataset=arithmetic mode=quickstart trainer.max_steps=3 \\
        speedups.shared_prefix=false

It writes its run into a temporary folder (or `hydra.run.dir=...`), without evaluation, pre-flight check or
checkpoints unless the overrides ask for them. Run it with nothing else on the machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager

import torch
from transformers import TrainerCallback

# Before the user's overrides, which may set them back: the profile is about training steps.
QUIET = ["eval.after_training=false", "preflight=false", "trainer.save_strategy=no"]
# The timed parts, as the table names them; indented ones are part of generation.
PARTS = {
    "generation": "generation",
    "prefill": "  prefill",
    "decode": "  decode",
    "generation_other": "  other (sampling, adapter merge)",
    "old_policy_forward": "old-policy forward",
    "reference_forward": "reference forward",
    "rewards": "rewards",
    "policy_forward": "policy forward (loss)",
    "policy_backward": "policy backward",
}


class StepProfile:
    """Seconds spent in each part of each training step."""

    def __init__(self):
        self.step: int | None = None  # the step being timed, None between steps
        self.seconds: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def add(self, part: str, seconds: float) -> None:
        if self.step is not None:
            self.seconds[self.step][part] += seconds

    @contextmanager
    def timing(self, part: str):
        start = clock()
        try:
            yield
        finally:
            self.add(part, clock() - start)

    def table(self) -> str:
        steps = sorted(self.seconds)
        timed = steps[1:] if len(steps) > 1 else steps  # step 1 warms up
        mean = {part: sum(self.seconds[step][part] for step in timed) / len(timed) for part in [*PARTS, "step"]}
        mean["generation_other"] = mean["generation"] - mean["prefill"] - mean["decode"]
        top_level = [part for part, label in PARTS.items() if not label.startswith(" ")]
        mean["rest"] = mean["step"] - sum(mean[part] for part in top_level)
        rows = [*PARTS.items(), ("rest", "rest (loss arithmetic, optimizer, data)"), ("step", "step")]
        lines = [f"steps timed: {', '.join(map(str, timed))} of {len(steps)}", f"{'part':<42}{'s/step':>9}{'share':>8}"]
        lines += [f"{label:<42}{mean[part]:>9.3f}{mean[part] / mean['step']:>8.1%}" for part, label in rows]
        return "\n".join(lines)


def clock() -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def attach(profile: StepProfile, trainer_class: type) -> None:
    """Wrap the trainer's methods with the profile's timers (the class is grpo's GRPOTrainer, made for this run)."""
    original_init = trainer_class.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(StepClock(profile))
        backward = self.accelerator.backward
        self.accelerator.backward = lambda *a, **k: timed(profile, "policy_backward", backward, *a, **k)

    trainer_class.__init__ = init
    wrap(trainer_class, "_generate_single_turn", lambda self, call, *a, **k: generation(profile, self, call, *a, **k))
    wrap(trainer_class, "_calculate_rewards", lambda self, call, *a, **k: timed(profile, "rewards", call, *a, **k))
    wrap(trainer_class, "_get_per_token_logps_and_entropies",
         lambda self, call, model, *a, **k: timed(profile, pass_of(self, model), call, model, *a, **k))  # fmt: skip


def wrap(trainer_class: type, name: str, around) -> None:
    method = getattr(trainer_class, name)

    def wrapped(self, *args, **kwargs):
        return around(self, lambda *a, **k: method(self, *a, **k), *args, **kwargs)

    setattr(trainer_class, name, wrapped)


def timed(profile: StepProfile, part: str, call, *args, **kwargs):
    with profile.timing(part):
        return call(*args, **kwargs)


def pass_of(trainer, model) -> str:
    """Which pass a call of `_get_per_token_logps_and_entropies` is."""
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    if torch.is_grad_enabled():
        return "policy_forward"
    if model is trainer.ref_model:
        return "reference_forward"
    unwrapped = trainer.accelerator.unwrap_model(model)
    if isinstance(unwrapped, PeftModel):
        adapters_off = any(layer.disable_adapters for layer in unwrapped.modules() if isinstance(layer, BaseTunerLayer))
        if adapters_off or unwrapped.active_adapter == "ref":  # TRL's reference: the adapter off, or its "ref" copy
            return "reference_forward"
    return "old_policy_forward"


def generation(profile: StepProfile, trainer, call, prompt_ids, *args, **kwargs):
    """Time the generation, and within it each forward of the model (from its input embedding to its LM head):
    prefill up to the forward that gives every row its first token, decode after."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    forward = {"decoding": False}

    def before(module, args):
        forward["part"] = "decode" if forward["decoding"] else "prefill"
        forward["rows"], forward["at"] = len(args[0]), clock()

    def after(module, args, output):
        profile.add(forward["part"], clock() - forward["at"])
        # With speedups.shared_prefill, distinct prompts run first (fewer rows), then every row's last prompt token.
        forward["decoding"] |= forward["rows"] == len(prompt_ids)

    hooks = [model.get_input_embeddings().register_forward_pre_hook(before),
             model.get_output_embeddings().register_forward_hook(after)]  # fmt: skip
    try:
        return timed(profile, "generation", call, prompt_ids, *args, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()


class StepClock(TrainerCallback):
    """Opens a step's timers at its beginning and adds its wall time at its end."""

    def __init__(self, profile: StepProfile):
        self.profile = profile
        self.started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.profile.step = state.global_step + 1
        self.started = clock()

    def on_step_end(self, args, state, control, **kwargs):
        self.profile.add("step", clock() - self.started)
        self.profile.step = None


def main() -> None:
    if {"-h", "--help"} & set(sys.argv[1:]):
        sys.exit(__doc__)
    import grpo.train
    from grpo.training.trainer import GRPOTrainer

    overrides = sys.argv[1:]
    run_dir = [] if any(o.startswith("hydra.run.dir=") for o in overrides) else [
        f"hydra.run.dir={tempfile.mkdtemp(prefix='grpo-profile-')}"
    ]  # fmt: skip
    profile = StepProfile()
    attach(profile, GRPOTrainer)
    sys.argv = [sys.argv[0], *QUIET, *run_dir, *overrides]
    grpo.train.main()
    if not profile.seconds:
        sys.exit("[profile_step] no training step was timed (trainer.max_steps=0, or preflight=only?)")
    print(profile.table())


if __name__ == "__main__":
    main()
