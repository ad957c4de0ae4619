"""The evaluation's files: comparison.json, problems.jsonl, summary.md, chart.png and examples.html.

Every number in the table, the chart and the page is read from the same `comparison` dict that goes into
comparison.json, which is itself computed from the per-problem records in problems.jsonl.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from grpo.evaluation.metrics import ACCURACY, CI_LEVEL, FORMAT, MODELS, OUTCOMES, RESAMPLES
from grpo.runs.layout import COMPARISON_FILE

COLORS = {"base": "#9e9e9e", "trained": "#1f77b4"}
OUTCOME_COLORS = {"fixed": "#2ca02c", "broken": "#d62728", "both correct": "#8fbc8f", "both wrong": "#c0c0c0"}
CONSOLE_CATEGORIES = 8  # a longer per-category table stays in summary.md, out of the log's closing table
STATISTICS_NOTE = (
    f"p: McNemar's exact test of fixed against broken problems (two-sided); CI: bootstrap {CI_LEVEL:.0%} CI, "
    f"paired over problems, {RESAMPLES} resamples (percentile)."
)


def write_report(out_dir: Path, comparison: dict, records: Sequence[dict], examples: int) -> list[Path]:
    """Write every file of the report into `out_dir`; returns their paths."""
    files = {
        COMPARISON_FILE: json.dumps(comparison, indent=2) + "\n",
        "problems.jsonl": "".join(json.dumps(record) + "\n" for record in records),
        "summary.md": summary_markdown(comparison),
        "examples.html": examples_html(comparison, records, examples),
    }
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
    chart(comparison).savefig(out_dir / "chart.png", dpi=120)
    return [out_dir / name for name in [*files, "chart.png"]]


def summary_rows(comparison: dict) -> list[tuple[str, str, str, str]]:
    """(metric, base, trained, change) as printed: fractions with 3 decimals, lengths with 1."""
    base, trained = comparison["base"], comparison["trained"]
    rows = [
        _row("accuracy", base["accuracy"], trained["accuracy"], 3),
        *sampling_rows(comparison),
        _row("format rate", base["format_rate"], trained["format_rate"], 3),
    ]
    for name in base["rewards"]:
        if name not in (ACCURACY, FORMAT):  # those two are the rows above
            rows.append(_row(f"reward: {name}", base["rewards"][name], trained["rewards"][name], 3))
    rows.append(_row("total reward (weighted)", base["reward"], trained["reward"], 3))
    rows.append(_row("mean completion length (tokens)", base["mean_length"], trained["mean_length"], 1))
    rows.append(("problems", str(base["n"]), str(trained["n"]), ""))
    return rows


def sampling_rows(comparison: dict) -> list[tuple[str, str, str, str]]:
    """pass@k (k > 1; the accuracy row is pass@1) and maj@K, where each problem was sampled K > 1 times."""
    base, trained, samples = comparison["base"], comparison["trained"], comparison["samples"]
    if samples == 1:
        return []
    rows = [_row(f"pass@{k}", base["pass_at_k"][k], trained["pass_at_k"][k], 3) for k in base["pass_at_k"] if k != "1"]
    return [*rows, _row(f"maj@{samples}", base["maj_at_k"], trained["maj_at_k"], 3)]


def summary_markdown(comparison: dict, max_categories: int | None = None) -> str:
    """A Markdown page: what was compared, the metrics table, the per-problem outcome counts and how far to trust the
    change, and the per-category table (left out when it has more than `max_categories` rows)."""
    setup = comparison["setup"]
    lines = [
        f"# Base vs trained on {setup['dataset']} ({setup['split']} split)",
        "",
        f"- base: `{setup['base']}`",
        f"- trained: `{setup['trained']}`",
        f"- decoding: {setup['decoding']}",
        "",
        "| metric | base | trained | change |",
        "|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in summary_rows(comparison)),
        "",
        outcome_sentence(comparison),
        statistics_sentence(comparison),
        *category_table(comparison, max_categories),
        "",
        "Accuracy and format rate are the means of the training rewards `accuracy` and `format` (each 0 or 1).",
        *sampling_note(comparison["samples"]),
        STATISTICS_NOTE,
        "Per-problem records: problems.jsonl; example completions: examples.html.",
        "",
    ]
    return "\n".join(lines)


def outcome_sentence(comparison: dict) -> str:
    counts = comparison["outcomes"]
    return (
        f"Training fixed {counts['fixed']} problems and broke {counts['broken']} "
        f"(both correct: {counts['both correct']}, both wrong: {counts['both wrong']})."
    )


def statistics_sentence(comparison: dict) -> str:
    """McNemar's p on the problems that changed, and the accuracy change with its bootstrap interval."""
    counts, samples = comparison["outcomes"], comparison["samples"]
    changed = counts["fixed"] + counts["broken"]
    vote = f" (majority answer of {samples} samples)" if samples > 1 else ""
    change = _row("", comparison["base"]["accuracy"], comparison["trained"]["accuracy"], 3)[3] or "n/a"
    low, high = comparison["accuracy_change_ci"]
    return (
        f"McNemar exact p {_p_value(comparison['mcnemar_p'])} on the {changed} problems that changed{vote}; "
        f"accuracy change {change}, {CI_LEVEL:.0%} CI [{low:+.3f}, {high:+.3f}] (bootstrap over problems)."
    )


def sampling_note(samples: int) -> list[str]:
    if samples == 1:
        return []
    note = (
        f"Each model answered every problem {samples} times: the means are over all samples (accuracy is pass@1), "
        f"pass@k is the unbiased estimator of Chen et al. 2021, and maj@{samples} (majority vote of the answers) "
        "decides which problems count as fixed and broken."
    )
    return [note]


def category_table(comparison: dict, max_rows: int | None = None) -> list[str]:
    """The per-category rows, after a blank line: none without categories or with more than `max_rows` of them."""
    categories = comparison["categories"]
    if not categories or (max_rows is not None and len(categories) > max_rows):
        return []
    lines = ["", "| category | problems | base | trained | change | fixed | broken |", "|---|---|---|---|---|---|---|"]
    for name, row in categories.items():
        _, base, trained, change = _row(name, row["base_accuracy"], row["trained_accuracy"], 3)
        lines.append(f"| {name} | {row['n']} | {base} | {trained} | {change} | {row['fixed']} | {row['broken']} |")
    return lines


def _p_value(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def chart(comparison: dict) -> Figure:
    """Three panels: reward means (accuracy, format rate, others), mean completion length, per-problem outcomes."""
    figure = Figure(figsize=(13, 4.2), layout="constrained")
    scores, lengths, outcomes = figure.subplots(1, 3, width_ratios=[3, 1.2, 2])
    metrics = {"accuracy": "accuracy", "format rate": "format_rate"}
    names = [name for name in comparison["base"]["rewards"] if name not in (ACCURACY, FORMAT)]
    for offset, model in zip((-0.2, 0.2), MODELS):
        summary = comparison[model]
        values = [summary[key] for key in metrics.values()] + [summary["rewards"][name] for name in names]
        positions = [i + offset for i in range(len(values))]
        _bars(scores, positions, values, COLORS[model], model, "{:.2f}")
        _bars(lengths, [offset], [summary["mean_length"]], COLORS[model], model, "{:.1f}")
    scores.set_xticks(range(len(metrics) + len(names)), [*metrics, *names])
    scores.set_ylim(0, max(1.0, *(bar.get_height() for bar in scores.patches)) * 1.15)
    scores.set_title(f"Scores ({comparison['base']['n']} problems)")
    scores.legend(loc="upper left")
    lengths.set_xticks([-0.2, 0.2], list(MODELS))
    lengths.set_title("Mean completion length (tokens)")
    labels = list(OUTCOMES.values())
    counts = [comparison["outcomes"][label] for label in labels]
    outcomes.bar(labels, counts, color=[OUTCOME_COLORS[label] for label in labels])
    for x, count in enumerate(counts):
        outcomes.annotate(str(count), (x, count), ha="center", va="bottom")
    outcomes.set_title("Per-problem outcome of training")
    outcomes.set_ylim(0, max(counts, default=0) * 1.15 + 1)
    return figure


def _bars(axes, positions, values, color, label, fmt) -> None:
    values = [0.0 if value is None else value for value in values]
    axes.bar(positions, values, width=0.4, color=color, label=label)
    for x, value in zip(positions, values):
        axes.annotate(fmt.format(value), (x, value), ha="center", va="bottom", fontsize=8)


def examples_html(comparison: dict, records: Sequence[dict], per_section: int) -> str:
    """A page with the summary and, per outcome, up to `per_section` problems with both completions side by side."""
    setup = comparison["setup"]
    rows = "".join(f"<tr>{''.join(f'<td>{_text(cell)}</td>' for cell in row)}</tr>" for row in summary_rows(comparison))
    sections = []
    for outcome in OUTCOMES.values():
        chosen = [record for record in records if record["outcome"] == outcome]
        shown = chosen[:per_section]
        problems = "".join(_problem_row(record) for record in shown)
        sections.append(
            f"<h2>{outcome.capitalize()} ({len(chosen)}; {len(shown)} shown)</h2>"
            + (f"<table class='examples'><tr><th>problem</th><th>base</th><th>trained</th></tr>{problems}</table>"
               if shown else "<p>None.</p>")
        )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Base vs trained: {_text(setup['dataset'])}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.4em; vertical-align: top; }}
table.examples td {{ width: 33%; }} pre {{ white-space: pre-wrap; margin: 0; }}
.score {{ color: #555; font-size: 0.85em; }} .right {{ background: #e8f5e9; }} .wrong {{ background: #ffebee; }}
</style></head><body>
<h1>Base vs trained on {_text(setup['dataset'])} ({_text(setup['split'])} split)</h1>
<p>base: <code>{_text(setup['base'])}</code><br>trained: <code>{_text(setup['trained'])}</code><br>
decoding: {_text(setup['decoding'])}</p>
<table><tr><th>metric</th><th>base</th><th>trained</th><th>change</th></tr>{rows}</table>
<p>{_text(outcome_sentence(comparison))}<br>{_text(statistics_sentence(comparison))}</p>
<img src="chart.png" alt="chart" style="max-width: 100%">
{''.join(sections)}
</body></html>
"""


def _problem_row(record: dict) -> str:
    gold = f"<span class='score'>gold: {_text(record['answer'])}</span>"
    problem = f"<b>#{record['index']}</b> {_text(record['question'])}<br>{gold}"
    cells = [problem]
    for model in MODELS:
        result = record[model]
        scores = ", ".join(f"{name} {_value(value)}" for name, value in result["rewards"].items())
        cells.append(
            f"<td class='{'right' if result['correct'] else 'wrong'}'><pre>{_text(result['completion'])}</pre>"
            f"<span class='score'>{scores}; {result['length']} tokens</span></td>"
        )
    return f"<tr><td>{cells[0]}</td>{''.join(cells[1:])}</tr>"


def _row(label: str, base: float | None, trained: float | None, digits: int) -> tuple[str, str, str, str]:
    change = "" if base is None or trained is None else f"{trained - base:+.{digits}f}"
    return label, _value(base, digits), _value(trained, digits), change


def _value(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _text(value) -> str:
    return html.escape(str(value))
