"""Keep the memory that torch frees inside the process, so that later tensors reuse its pages.

glibc's malloc serves each allocation above its mmap threshold (at most 32 MB) from a fresh mapping and returns it
to the kernel on free; it also gives back the heap's free top beyond a trim threshold. The next tensor of that size
then starts on untouched pages, and filling it costs a page fault per 4 KB, several times the arithmetic that writes
it. A GRPO step on a CPU allocates such tensors by the dozen: TRL's log-probabilities work through [tokens x 32768]
float32 tiles of the logits (50 MB for 384 tokens), each operation on them a new one.

With mappings and trimming off, freed blocks stay in the heap: over the first steps it grows to a step's peak (the
blocks' sizes fragment it a little), and later steps' tensors reuse its pages. Only where memory comes from changes, so
every result is the same; the process keeps its peak memory until it exits
(docs/experiments/2026-12-07-allocations-and-sampling.md).
"""

from __future__ import annotations

import ctypes
import os

# mallopt's parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# Give the heap's free top back to the kernel only beyond 2 GB (mallopt takes an int).
TRIM_THRESHOLD = 2**31 - 1


def keep_freed_memory() -> str | None:
    """Tell glibc's malloc to keep freed memory in the process for reuse, from now on, for the whole process. Returns
    why it does not apply (None: it does)."""
    if not libc_is_glibc():
        return "the C library is not glibc (its malloc options are glibc's)"
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not (mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return "glibc's mallopt refused the settings"
    return None


def libc_is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError, AttributeError):  # no such name outside glibc (macOS, musl, Windows)
        return False
