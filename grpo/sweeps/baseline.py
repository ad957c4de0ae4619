"""`python -m grpo.report <dir> --baseline 'reward=math'`: every other setting against the one named, seed by seed.

Two settings trained with the same seed start from the same LoRA initialisation and see the prompts in the same
order, so the difference on one seed carries less noise than the difference of two means over different seeds. The
comparison takes the seeds both settings finished and evaluated, and gives the mean of the per-seed differences in
held-out accuracy with its Student t-interval (a paired t-interval) and how many seeds each side won.
"""

from __future__ import annotations

from grpo.errors import ConfigError
from grpo.sweeps.settings import SEED_KEY, Setting, interval

DIFFERENCE = "accuracy diff"  # this setting's held-out accuracy minus the baseline's, on the same seed
PAIRED_COLUMNS = ("pairs", DIFFERENCE, f"{DIFFERENCE} low", f"{DIFFERENCE} high", "wins", "ties", "losses")


def parse_baseline(text: str) -> dict[str, str]:
    """`'reward=math trainer.beta=0'` -> `{"reward": "math", "trainer.beta": "0"}`."""
    pairs = [item.partition("=") for item in text.split()]
    if not pairs or any(not key or not sep for key, sep, _ in pairs):
        raise ConfigError(
            f"--baseline {text!r}: name the baseline setting with key=value pairs, e.g. --baseline reward=math"
        )
    return {key.lstrip("+~"): value for key, _, value in pairs}


def find_baseline(settings: list[Setting], text: str) -> Setting:
    """The one setting whose swept values match `text`'s pairs; ConfigError listing the candidates otherwise."""
    wanted = parse_baseline(text)
    keys = list(settings[0].values) if settings else []
    unknown = [key for key in wanted if key not in keys]
    if unknown:
        swept = ", ".join(keys) or f"none but {SEED_KEY}"
        raise ConfigError(
            f"--baseline {text!r}: {', '.join(unknown)} is not swept here (swept: {swept}); "
            f"it could be: {_choices(settings)}"
        )
    matches = [setting for setting in settings if all(_same(setting.values[k], v) for k, v in wanted.items())]
    if len(matches) != 1:
        found = f"{len(matches)} settings" if matches else "no setting"
        raise ConfigError(f"--baseline {text!r} matches {found}; it could be: {_choices(matches or settings)}")
    return matches[0]


def _choices(settings: list[Setting]) -> str:
    return "; ".join(f"--baseline '{setting.command_line()}'" for setting in settings)


def paired_difference(setting: Setting, baseline: Setting) -> dict[str, float | int]:
    """`setting` minus `baseline` in held-out accuracy over the seeds both finished and evaluated (PAIRED_COLUMNS)."""
    ours, theirs = _accuracy_by_seed(setting), _accuracy_by_seed(baseline)
    differences = [ours[seed] - theirs[seed] for seed in ours if seed in theirs]
    mean, low, high = interval(differences)
    wins, ties = sum(d > 0 for d in differences), sum(d == 0 for d in differences)
    counts = {"wins": wins, "ties": ties, "losses": len(differences) - wins - ties}
    return {"pairs": len(differences), DIFFERENCE: mean, f"{DIFFERENCE} low": low, f"{DIFFERENCE} high": high, **counts}


def _accuracy_by_seed(setting: Setting) -> dict[str | None, float]:
    return {run.value(SEED_KEY): run.evaluation.trained for run in setting.finished if run.evaluation is not None}


def _same(value: str | None, wanted: str) -> bool:
    # As typed on the command line, or the same value as Hydra reads it: `0.5` and `0.50`, `false` and the `False`
    # that Hydra's sweeper writes into a job's overrides.
    return value is not None and (value == wanted or _scalar(value) == _scalar(wanted))


def _scalar(text: str) -> tuple[str, object]:
    """`text` as a typed value (tagged, so that `true` never equals `1`)."""
    if text.lower() in ("true", "false"):
        return "bool", text.lower() == "true"
    try:
        return "number", float(text)
    except ValueError:
        return "text", text
