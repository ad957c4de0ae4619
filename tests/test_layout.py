"""The tree shows the architecture: dependencies between grpo's packages point one way, and the config checks load
no heavy library (so a mistake is reported in a second, before torch loads)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "grpo"
# What each package may import from grpo, besides itself and the shared leaves (grpo.errors, grpo.cache).
# Lower layers (models, data, rewards, runs) never reach up into training, evaluation, the verifier or sweeps;
# grpo.config.validate is the one place every group is checked, so it may build rewards and read their neighbours.
ALLOWED = {
    "config": {"runs", "rewards", "evaluation", "sweeps", "verifier"},
    "runs": {"config"},
    "models": {"config"},
    "data": {"config", "rewards"},
    "rewards": {"config"},
    "training": {"config", "models", "rewards", "runs", "evaluation"},  # the pre-flight samples as evaluation does
    "evaluation": {"config", "models", "data", "rewards", "runs"},
    "verifier": {"config", "models", "data", "rewards", "runs", "training", "evaluation"},
    "sweeps": {"config", "runs", "evaluation"},  # the statistics of grpo.evaluation.stats
}
ENTRY_POINTS = {"train", "evaluate", "train_rm", "report"}
SHARED = {"errors", "cache"}


def grpo_imports(path: Path) -> set[str]:
    """The grpo packages or modules a file imports (at any depth: imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name.split(".")[1] for name in names if name.startswith("grpo.")}
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_the_layers_below_it(package):
    for path in (PACKAGE / package).glob("*.py"):
        reached = grpo_imports(path) - {package} - SHARED
        assert not reached & ENTRY_POINTS, f"{path.name} imports an entry point: {reached & ENTRY_POINTS}"
        assert reached <= ALLOWED[package], f"grpo/{package}/{path.name} imports {sorted(reached - ALLOWED[package])}"


def test_no_stray_modules_at_the_top():
    top = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert top == ENTRY_POINTS | SHARED


def test_the_config_checks_load_no_heavy_library():
    code = (
        "import sys, grpo.config.validate, grpo.config.trainer_fields, grpo.rewards.build;"
        "print([m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
