"""Does a verifier check the arithmetic? Score right and wrong answers that differ only in the number.

A verifier's pairwise accuracy on sampled pairs can come from anything that separates them: a missing answer tag,
garbage after the answer, length. This probe removes all of that. For each arithmetic problem it scores the right
answer written as the prompt's example writes it ("13 * 5 = 65.\\n<answer>65</answer>") against the same text with a
wrong number: one off, ten off, and 2-9 off. A verifier that checks arithmetic scores the right one higher; one that
only learned the shape of an answer is at chance (0.5). Accuracy by operator and by size of the error.

With `--run`, it reads instead what a policy run trained on (TRL's `<run>/completions/*.parquet`): within each group,
how often the verifier's reward put a right answer above a well-formed wrong one, in the first and the second half
of training. That is the verifier's accuracy where it counts, on the policy's own answers as they change. Beside
it, how much of the policy's push (|advantage|) came from groups with no right answer at all: there a rule-based
accuracy reward is flat and pushes nothing, a verifier pushes towards the wrong answers it likes best. And how
often its reward paid the policy's right answers as right and its well-formed wrong ones as wrong.

    python scripts/verifier_probe.py outputs/rm/verifier/reward_model                    # held-out problems
    python scripts/verifier_probe.py outputs/rm/verifier/reward_model --pairs outputs/rm/verifier/pairs.jsonl
                                                         # instead: the training problems it ranked pairs of
    python scripts/verifier_probe.py --run outputs/recipe/verifier/seed-42     # a reward=verifier run's groups
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from pathlib import Path

ERRORS = {"one off": (1, 1), "2-9 off": (2, 9), "ten off": (10, 10)}


def minimal_pairs(questions: list[tuple[str, int]], seed: int) -> list[dict]:
    """(question, right, wrong) texts for each problem and each size of error, labelled by operator and error."""
    from grpo.verifier.answer_swaps import near_miss

    rng = random.Random(seed)
    pairs = []
    for question, gold in questions:
        expression = question.removeprefix("What is ").removesuffix("?")
        operator = expression.split()[1]
        for error, (low, high) in ERRORS.items():
            wrong = near_miss(gold, rng, low, high)
            pairs.append({
                "prompt": question, "operator": operator, "error": error,
                "right": f"{expression} = {gold}.\n<answer>{gold}</answer>",
                "wrong": f"{expression} = {wrong}.\n<answer>{wrong}</answer>",
            })  # fmt: skip
    return pairs


def probe(model: str, questions: list[tuple[str, int]], seed: int = 0, batch_size: int = 64) -> dict:
    """Share of minimal pairs the verifier ranks right, overall, by operator and by error size."""
    from grpo.verifier.fit import score_margins

    pairs = minimal_pairs(questions, seed)
    margins = score_margins(
        model, [{"prompt": p["prompt"], "chosen": p["right"], "rejected": p["wrong"]} for p in pairs], batch_size
    )
    ranked = defaultdict(list)
    for pair, margin in zip(pairs, margins, strict=True):
        for group in ("all", pair["operator"], pair["error"]):
            ranked[group].append(margin > 0)
    return {group: {"accuracy": sum(hits) / len(hits), "pairs": len(hits)} for group, hits in ranked.items()}


def training_agreement(run_dir: Path, reward: str = "reward_model") -> dict:
    """Per half of a reward=verifier run: (right, formatted wrong) answer pairs within a step's group, the share
    the verifier's reward ranked right and the share it tied (a verdict pays 1 or 0, so many pairs tie); the half's
    training accuracy beside it, the share of the policy's push (sum of |advantage|) that came from groups with no
    right answer, where only the verifier's taste decides, and the verdict rates: right answers paid above 0.5, and
    formatted wrong ones paid 0.5 or less."""
    import pandas as pd

    from grpo.verifier.threshold import verdict_rates

    files = sorted((run_dir / "completions").glob("*.parquet"))
    if not files:
        raise SystemExit(f"--run {run_dir}: no completions/*.parquet (the run needs trainer.log_completions=true).")
    table = pd.concat(pd.read_parquet(path) for path in files)
    missing = [column for column in (reward, "accuracy", "format") if column not in table]
    if missing:
        raise SystemExit(f"--run {run_dir}: its completions lack the column(s) {missing}: a reward=verifier run?")
    table["question"] = table["prompt"].map(lambda turns: turns[-1]["content"])
    middle = table["step"].max() // 2
    halves = {}
    for half, rows in (("first half", table[table["step"] <= middle]), ("second half", table[table["step"] > middle])):
        hits = ties = pairs = 0
        for _, group in rows.groupby(["step", "question"]):
            right = group[group["accuracy"] == 1][reward]
            wrong = group[(group["accuracy"] == 0) & (group["format"] == 1)][reward]
            hits += sum(high > low for high in right for low in wrong)
            ties += sum(high == low for high in right for low in wrong)
            pairs += len(right) * len(wrong)
        no_right = rows.groupby(["step", "question"])["accuracy"].transform("max") == 0
        push = rows["advantage"].abs() if "advantage" in rows else pd.Series(float("nan"), index=rows.index)
        # A verdict reward (normalize=threshold) pays 1 or 0, a sigmoid one above 0.5 for a positive score.
        formatted = rows[(rows["accuracy"] == 1) | (rows["format"] == 1)]
        verdicts = verdict_rates(formatted[reward].tolist(), (formatted["accuracy"] == 1).tolist(), threshold=0.5)
        halves[half] = {"agreement": hits / pairs if pairs else float("nan"), "pairs": pairs,
                        "ties": ties / pairs if pairs else float("nan"),
                        "training accuracy": rows["accuracy"].mean(),
                        "push without a right answer": push[no_right].sum() / push.sum(), **verdicts}  # fmt: skip
    return halves


def held_out_questions() -> list[tuple[str, int]]:
    from grpo.data.arithmetic import load_arithmetic

    return [(row["question"], int(row["answer"])) for row in load_arithmetic(split="test")]


def ranked_questions(pairs_file: Path) -> list[tuple[str, int]]:
    """The training problems a verifier saw pairs of (grpo.train_rm's pairs.jsonl), with their answers."""
    from grpo.data.arithmetic import load_arithmetic
    from grpo.verifier.pairs import read_pairs

    seen = {pair["prompt"] for pair in read_pairs(str(pairs_file))}
    train = load_arithmetic(split="train", size=1200)  # every problem of the default settings (20 * 20 * 3)
    questions = [(row["question"], int(row["answer"])) for row in train if row["question"] in seen]
    if len(questions) < len(seen):
        raise SystemExit(f"--pairs {pairs_file}: {len(seen) - len(questions)} of its problems are not default-settings "
                         "arithmetic training problems (operands 1-20, one operation); the probe knows only those.")
    return questions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="a reward model folder (grpo.train_rm's <run>/reward_model)")
    parser.add_argument("--pairs", type=Path, help="probe the problems of this pairs.jsonl instead of held-out ones")
    parser.add_argument("--run", type=Path, help="instead: the verifier's agreement with accuracy in this run's groups")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.run:
        for half, row in training_agreement(args.run).items():
            print(f"{half}: right above formatted wrong in {row['agreement']:.3f} of {row['pairs']} pairs, "
                  f"tied in {row['ties']:.3f} (training accuracy {row['training accuracy']:.3f}); "
                  f"{row['push without a right answer']:.2f} of |advantage| from groups with none right; "
                  f"paid as right: {row['right_called_right']:.2f} of right answers, "
                  f"{1 - row['wrong_called_wrong']:.2f} of formatted wrong ones")  # fmt: skip
        return 0
    if not args.model:
        parser.error("give a reward model folder, or --run RUN_DIR")
    from grpo.errors import ConfigError

    try:
        questions = ranked_questions(args.pairs) if args.pairs else held_out_questions()
    except ConfigError as error:  # a pairs file with a bad line: the reader names it
        raise SystemExit(f"error: {error}") from None
    result = probe(args.model, questions, args.seed)
    print(f"{'pairs of':<10} {'accuracy':>8} {'pairs':>6}")
    for group, row in result.items():
        print(f"{group:<10} {row['accuracy']:>8.3f} {row['pairs']:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
