"""grpo installs like a library: a wheel built from the repo carries conf/, installs into a fresh environment and
trains from any directory; a user's own presets load from their own folder (Hydra's --config-dir)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("grpo", "conf", "pyproject.toml", "README.md")


def build_wheel(out: Path) -> Path:
    """The wheel `pip install .` would install, built from a copy of the sources (the checkout stays clean)."""
    source = out / "source"
    source.mkdir(parents=True)
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), source]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return next(out.glob("grpo-*.whl"))


def fresh_environment(folder: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed. Its dependencies (torch, TRL, ...) are this environment's,
    seen through a .pth file, so the test needs no downloads; grpo itself comes only from the wheel."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_every_package_of_the_tree_is_in_the_wheel_list():
    """pyproject.toml lists the packages (conf/ is mapped into grpo/conf): a new package must be added there."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    tree = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "grpo").rglob("__init__.py")}
    assert tree | {"grpo.conf"} == listed


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_environment_and_trains_from_any_directory(tiny_checkpoint, tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {name.removeprefix("grpo/conf/") for name in names if name.startswith("grpo/conf/")}
    assert shipped == {str(p.relative_to(ROOT / "conf")) for p in (ROOT / "conf").rglob("*.yaml")}
    assert "grpo/data/embedded_prompts.jsonl" in names

    python = fresh_environment(tmp_path / "env", wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run(python, "-c", "import grpo; print(grpo.__file__)", cwd=elsewhere)
    assert where.stdout.startswith(str(tmp_path / "env")), where.stdout + where.stderr

    composed = run(python, "-m", "grpo.train", "model=smollm2-135m", "dataset=arithmetic", "mode=quickstart",
                   "--cfg", "job", cwd=elsewhere)  # fmt: skip
    assert composed.returncode == 0 and "num_generations: 5" in composed.stdout, composed.stderr[-3000:]

    run_dir = elsewhere / "run"
    overrides = [*tiny_overrides(tiny_checkpoint, run_dir, steps=1), f"hydra.run.dir={run_dir}"]
    trained = run(python, "-m", "grpo.train", *overrides, cwd=elsewhere)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_presets_of_your_own_load_from_your_folder(tmp_path):
    """`--config-dir` adds a folder to the search path: its presets join the shipped groups."""
    mine = tmp_path / "my_presets"
    (mine / "reward").mkdir(parents=True)
    (mine / "reward" / "terse.yaml").write_text(
        "# python -m grpo.train --config-dir my_presets reward=terse\n"
        "format:\n  weight: 0.25\n  fn: {_target_: grpo.rewards.format_reward, _partial_: true}\n"
        "accuracy:\n  weight: 2.0\n  fn: {_target_: grpo.rewards.accuracy_reward, _partial_: true}\n"
    )
    command = [sys.executable, "-m", "grpo.train", "--config-dir", str(mine), "reward=terse", "--cfg", "job"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "weight: 0.25" in done.stdout and "weight: 2.0" in done.stdout
