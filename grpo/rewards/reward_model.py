"""Learned reward: a Hugging Face sequence-classification reward model scores (instruction, completion) pairs.

As in RLHF (Ouyang et al., 2022, arXiv:2203.02155), a model trained on human preference pairs gives each reply one
scalar; GRPO then only compares the scores within a group. The default, OpenAssistant's DeBERTa-v3 reward model,
was trained on (question, answer) text pairs; chat reward models (e.g. Llama-based ones) expect the conversation in
their chat template. `input_format` says which, so any model with a one-output head (num_labels=1) works.

torch and transformers are imported inside the class, so importing grpo.rewards stays light.
"""

from __future__ import annotations

import logging
import math
import os
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grpo.config.targets import checked_by
from grpo.config.values import is_whole_number
from grpo.errors import ConfigError, RewardUnavailable
from grpo.rewards.text import completion_text, prompt_text

INPUT_FORMATS = ("pair", "chat", "template")
NORMALIZERS = ("none", "sigmoid", "running", "threshold")
# Where a calibrated right/wrong threshold is kept, in the reward model's config.json (grpo.verifier.threshold).
THRESHOLD_CONFIG_KEY = "verifier_threshold"
DTYPES = ("auto", "float32", "bfloat16", "float16")

log = logging.getLogger(__name__)


def check_reward_model_settings(input_format, template, normalize, threshold, batch_size, max_length, dtype) -> None:
    """Refuse settings that cannot work; run on the config before anything loads (grpo.arguments.check_call)."""
    if input_format not in INPUT_FORMATS:
        raise ConfigError(f"input_format={input_format!r}: choose one of {list(INPUT_FORMATS)}.")
    if input_format == "template":
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        if fields != {"prompt", "completion"}:
            raise ConfigError(
                f"template={template!r}: needs exactly the fields {{prompt}} and {{completion}}, not {sorted(fields)}."
            )
    if normalize not in NORMALIZERS:
        raise ConfigError(f"normalize={normalize!r}: choose one of {list(NORMALIZERS)}.")
    if threshold is not None and not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
        raise ConfigError(f"threshold={threshold!r}: a raw score (the head's logit), or null for the model's own.")
    if not is_whole_number(batch_size, at_least=1):
        raise ConfigError(f"batch_size={batch_size!r}: must be a positive integer.")
    if not is_whole_number(max_length, at_least=1):
        raise ConfigError(f"max_length={max_length!r}: must be a positive integer (tokens).")
    if dtype not in DTYPES:
        raise ConfigError(f"dtype={dtype!r}: choose one of {list(DTYPES)}.")


@checked_by(check_reward_model_settings)
class RewardModelReward:
    """Score completions with a sequence-classification reward model, loaded once when the reward is built.

    `model` is a Hub id or a local folder. The model sees the instruction (the prompt's last user turn) and the
    completion, joined by `input_format`: `pair` passes them as a text pair to the tokenizer (BERT/DeBERTa reward
    models such as OpenAssistant's), `chat` renders them as a user and an assistant turn with the tokenizer's chat
    template, `template` fills `template` (a string with `{prompt}` and `{completion}`). Scoring runs `batch_size`
    pairs at a time on `device` (`auto`: the GPU when there is one, as the policy's, else the CPU) in inference mode.

    Range: `normalize=none` gives the head's raw logit (unbounded, on the model's own scale),
    `sigmoid` maps it into (0, 1), `running` standardises it by the mean and std of every score seen so far
    (about zero-mean, unit-std, unbounded), so that weights mean the same whatever the model's scale, and
    `threshold` gives a verdict: 1.0 above `threshold` (a raw score), else 0.0. A verifier grpo.train_rm trained
    carries its calibrated threshold in its config (grpo/verifier/threshold.py), used when `threshold` is null.

    Raises RewardUnavailable when the model cannot be loaded (not found, offline, out of memory, a missing
    tokenizer dependency) and ConfigError for settings that cannot work.
    """

    def __init__(
        self,
        model: str,
        input_format: str = "pair",
        template: str = "{prompt}\n\n{completion}",
        normalize: str = "sigmoid",
        threshold: float | None = None,
        batch_size: int = 8,
        max_length: int = 512,
        device: str = "auto",
        dtype: str = "float32",
        trust_remote_code: bool = False,
    ):
        check_reward_model_settings(input_format, template, normalize, threshold, batch_size, max_length, dtype)
        self.model_id = model
        self.input_format = input_format
        self.template = template
        self.normalize = normalize
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = resolve_device(device)
        self.tokenizer, self.model = _load(model, self.device, dtype, trust_remote_code)
        if self.model.config.num_labels != 1:
            raise ConfigError(
                f"model={model} has {self.model.config.num_labels} output labels; a reward model gives one score "
                "(num_labels=1)."
            )
        if input_format == "chat" and not self.tokenizer.chat_template:
            raise ConfigError(f"input_format=chat: {model}'s tokenizer has no chat template; use pair or template.")
        self.threshold = threshold
        if normalize == "threshold" and threshold is None:
            self.threshold = getattr(self.model.config, THRESHOLD_CONFIG_KEY, None)
            if self.threshold is None:
                raise ConfigError(
                    f"normalize=threshold: {model} carries no calibrated threshold (grpo.train_rm stores one when it "
                    "samples the answers itself); give one: reward.<name>.fn.threshold=<raw score>."
                )
        # Running statistics for normalize=running (Chan et al.'s parallel form of Welford's algorithm).
        self._count, self._mean, self._m2 = 0, 0.0, 0.0

    def __call__(
        self,
        completions: list[Any],
        prompts: list[Any] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        """One score per completion (see the class docstring for its range). Extra TRL columns are ignored.

        With TRL's `log_metric`, the batch's mean raw score is logged as `reward_model/raw_mean`, so the model's own
        scale stays visible whatever the normalisation.
        """
        prompts = prompts if prompts is not None else [""] * len(completions)
        raw = self.score([(prompt_text(p), completion_text(c)) for p, c in zip(prompts, completions, strict=True)])
        if log_metric is not None and raw:
            log_metric("reward_model/raw_mean", sum(raw) / len(raw))
        return self._normalized(raw)

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Raw scores (the head's logit) of (instruction, completion) pairs, `batch_size` pairs per forward pass.

        Out of memory, the batch is halved (for the rest of the run, with a warning) and retried; out of memory at
        one pair per pass, or any other failure, stops the step with a message naming the reward model and the fix.
        """
        import torch

        scores: list[float] = []
        start = 0
        with torch.inference_mode():
            while start < len(pairs):
                batch = pairs[start : start + self.batch_size]
                try:
                    logits = self.model(**self._encode(batch).to(self.device)).logits
                except torch.OutOfMemoryError:
                    if self.batch_size == 1:
                        elsewhere = "" if self.device == "cpu" else ", or score on the CPU: reward.<name>.fn.device=cpu"
                        raise RuntimeError(
                            f"reward model {self.model_id} ran out of memory scoring one completion on {self.device}; "
                            f"lower reward.<name>.fn.max_length{elsewhere}."
                        ) from None
                    self.batch_size //= 2
                    log.warning("reward model %s ran out of memory; scoring %d pairs per pass from now on (was %d).",
                                self.model_id, self.batch_size, self.batch_size * 2)  # fmt: skip
                    _empty_cache(self.device)
                    continue
                scores += logits[:, 0].float().tolist()
                start += len(batch)
        if not all(math.isfinite(score) for score in scores):
            raise RuntimeError(
                f"reward model {self.model_id} gave a non-finite score (NaN or inf); with dtype=float16 use bfloat16 "
                "or float32 (reward.reward_model.fn.dtype)."
            )
        return scores

    def _encode(self, pairs: Sequence[tuple[str, str]]):
        options = {"padding": True, "truncation": True, "max_length": self.max_length, "return_tensors": "pt"}
        if self.input_format == "pair":
            return self.tokenizer([p for p, _ in pairs], [c for _, c in pairs], **options)
        if self.input_format == "chat":
            texts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}, {"role": "assistant", "content": c}], tokenize=False
                )
                for p, c in pairs
            ]
            return self.tokenizer(texts, add_special_tokens=False, **options)  # the template wrote them already
        return self.tokenizer([self.template.format(prompt=p, completion=c) for p, c in pairs], **options)

    def _normalized(self, raw: list[float]) -> list[float]:
        if self.normalize == "sigmoid":
            return [0.5 * (1.0 + math.tanh(x / 2)) for x in raw]  # the sigmoid, without exp() overflow
        if self.normalize == "running":
            self._update(raw)
            std = math.sqrt(self._m2 / self._count) if self._count else 0.0
            return [(x - self._mean) / std if std > 0 else 0.0 for x in raw]
        if self.normalize == "threshold":
            return [1.0 if x > self.threshold else 0.0 for x in raw]
        return list(raw)

    def _update(self, raw: list[float]) -> None:
        if not raw:
            return
        count, mean = len(raw), sum(raw) / len(raw)
        m2 = sum((x - mean) ** 2 for x in raw)
        delta, total = mean - self._mean, self._count + count
        self._mean += delta * count / total
        self._m2 += m2 + delta**2 * self._count * count / total
        self._count = total


def _empty_cache(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def resolve_device(device: str) -> str:
    """`auto`: this process's GPU (LOCAL_RANK under torchrun/accelerate, as the policy's), else Apple MPS, else CPU."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _load(model: str, device: str, dtype: str, trust_remote_code: bool):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(model).expanduser()
    if model.startswith(("/", ".", "~")) and not folder.is_dir():
        raise RewardUnavailable(f"reward model {model}: no such folder")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        network = AutoModelForSequenceClassification.from_pretrained(
            model, dtype=dtype if dtype == "auto" else getattr(torch, dtype), trust_remote_code=trust_remote_code
        )
        network.to(device).eval().requires_grad_(False)
    except (OSError, ValueError, ImportError, MemoryError, torch.OutOfMemoryError) as error:
        where = "" if folder.is_dir() else "not a local folder; "
        reason = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else ""
        raise RewardUnavailable(f"reward model {model} could not be loaded ({where}{type(error).__name__}: {reason})")
    # Batches are padded; models that read the score at the last real token find it through pad_token_id.
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if network.config.pad_token_id is None:
        network.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, network
