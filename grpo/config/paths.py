"""Where the shipped config groups are: `grpo/conf` inside an installed wheel, `conf/` at the top of a checkout."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]
CONFIG_DIR = _PACKAGE / "conf" if (_PACKAGE / "conf").is_dir() else _PACKAGE.parent / "conf"
