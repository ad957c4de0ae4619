"""The documentation: the site builds with no warnings (no broken link or anchor), and README stays a short guide
whose two commands a new user copies are there."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
TEST_COMMAND = "python -m pytest -q"
QUICKSTART_COMMAND = "python -m grpo.train model=smollm2-135m dataset=arithmetic mode=quickstart"


def test_docs_site_builds_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_a_short_guide_with_its_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; details belong in docs/"
    assert TEST_COMMAND in lines, "README's test command, on a line of its own"
    assert QUICKSTART_COMMAND in lines, "README's quickstart command, on a line of its own"
