"""Training callbacks that TRL lacks: sampled completions as TensorBoard text, and a clean stop on signals; and
the folder Trainer's own TensorBoard callback writes to.

With `log_completions=True`, TRL writes each logged step's prompts, completions and rewards to
`<output_dir>/completions/completions_<step>.parquet`, but sends them only to W&B and Trackio. This callback
forwards every N-th step's file to TensorBoard's text tab, as its own run `completions` next to the metrics.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pandas as pd
from transformers import TrainerCallback

from grpo.rewards.text import completion_text, prompt_text
from grpo.runs.layout import COMPLETIONS_DIR, TENSORBOARD_DIR

log = logging.getLogger(__name__)


class CompletionsToTensorBoard(TrainerCallback):
    """Mirror TRL's sampled-completion tables to TensorBoard text every `every_n_steps` optimizer steps."""

    def __init__(self, run_dir: str | Path, every_n_steps: int, rows: int = 4):
        self.source = Path(run_dir) / COMPLETIONS_DIR
        self.log_dir = Path(run_dir) / TENSORBOARD_DIR / "completions"
        self.every_n_steps = every_n_steps
        self.rows = rows
        self.sent: set[Path] = set()
        self.writer = None

    # TRL writes a step's file after the step's callbacks ran, so each event forwards what is there by then.
    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._forward_new_files()

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._forward_new_files()
            if self.writer is not None:
                self.writer.close()

    def _forward_new_files(self) -> None:
        for path in sorted(self.source.glob("completions_*.parquet")):
            step = int(path.stem.split("_")[-1])
            if path in self.sent or step % self.every_n_steps:
                continue
            self.sent.add(path)
            self._writer().add_text("completions", completions_markdown(pd.read_parquet(path), self.rows), step)
        if self.writer is not None:
            self.writer.flush()

    def _writer(self):
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.log_dir))
        return self.writer


def completions_markdown(table: pd.DataFrame, rows: int) -> str:
    """A Markdown page of the first `rows` completions with their rewards (TensorBoard renders Markdown)."""
    blocks = []
    reward_columns = [c for c in table.columns if c not in ("step", "prompt", "completion", "advantage")]
    for _, row in table.head(rows).iterrows():
        scores = ", ".join(f"{c}={row[c]:.3g}" for c in reward_columns if isinstance(row[c], (int, float)))
        blocks.append(
            f"**question:** {prompt_text(_messages(row['prompt']))}\n\n"
            f"**completion:**\n\n```\n{completion_text(_messages(row['completion']))}\n```\n\n"
            f"{scores}, advantage={row['advantage']:.3g}"
        )
    return "\n\n---\n\n".join(blocks)


def _messages(value):
    """Parquet hands chat messages back as a numpy array; the text helpers take a string or a list."""
    return value if isinstance(value, str) else list(value)


class StopOnSignal(TrainerCallback):
    """On Ctrl-C or SIGTERM (a scheduler's pre-emption), finish the current step, save a checkpoint and stop.

    A second signal interrupts at once. Handlers are installed only while training runs.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: str | None = None
        self.previous: dict = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}

    def on_step_end(self, args, state, control, **kwargs):
        if self.received:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame):
        if self.received:  # asked twice: stop now, without saving
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        log.warning("%s received: saving a checkpoint after this step, then stopping (again to stop now)", self.received)


