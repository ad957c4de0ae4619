"""Sampling that draws the tokens `torch.multinomial` draws, from the same random numbers, faster on a CPU.

To draw one token per row, `torch.multinomial` takes an exponential variate per vocabulary entry and returns the argmax
of probability / variate (the Gumbel-max trick in exponential form). On a CPU it computes those variates one at a
time, a logarithm each: for 8 rows of SmolLM2's 49152 tokens, 7.5 ms per generated token. `vectorised_multinomial`
draws the uniform numbers under them from the same generator, as float64 (one 64-bit draw each, as torch's exponential
takes), and computes -log(1 - u) for all of them at once: the same variates, so the same tokens, and the generator left
where torch leaves it. The variates' equality rests on torch's kernels (its vectorised log1p against the C library's),
so it is checked on this machine before use, and the speed-up steps aside where it does not hold.

Inside `vectorised_sampling()`, `torch.multinomial` is replaced for the calls it covers (float32 probabilities on the
CPU, one draw per row) and unchanged for the others: transformers' `generate` samples through it.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache

import torch

torch_multinomial = torch.multinomial


def vectorised_multinomial(input, num_samples, replacement=False, *, generator=None, out=None):  # noqa: A002
    """`torch.multinomial`, same signature, with the one-draw CPU float32 case computed from vectorised variates."""
    probs = input
    if not covers(probs, num_samples, replacement, out) or not valid(probs):  # torch's call, or torch's error
        return torch_multinomial(probs, num_samples, replacement, generator=generator, out=out)
    variates = exponential_variates(probs.shape, generator)
    return torch.div(probs, variates, out=variates).argmax(-1, keepdim=True)


def exponential_variates(shape: torch.Size, generator: torch.Generator | None) -> torch.Tensor:
    """`torch.empty(shape).exponential_(generator=generator)`, vectorised: -log(1 - u), u drawn as float64."""
    uniform = torch.empty(shape, dtype=torch.float64).uniform_(generator=generator)
    return uniform.neg_().log1p_().neg_().to(torch.float32)


def covers(probs: torch.Tensor, num_samples: int, replacement: bool, out) -> bool:
    return (
        probs.device.type == "cpu" and probs.dtype == torch.float32 and probs.dim() in (1, 2) and probs.numel() > 0
        and num_samples == 1 and not replacement and out is None
    )  # fmt: skip


def valid(probs: torch.Tensor) -> bool:
    """What torch.multinomial requires of them: finite, non-negative, some mass in each row."""
    finite_and_positive = bool((probs.max() < torch.inf) & (probs.min() >= 0))
    return finite_and_positive and not bool((probs.sum(-1) == 0).any())


@contextmanager
def vectorised_sampling():
    """Inside, `torch.multinomial` is `vectorised_multinomial` (the same draws; apply where `why_not_vectorise` is
    None)."""
    torch.multinomial = vectorised_multinomial
    try:
        yield
    finally:
        torch.multinomial = torch_multinomial


@cache
def why_not_vectorise() -> str | None:
    """Why `vectorised_multinomial` does not apply on this machine (None: it does): it must compute torch's variates,
    draw torch's tokens and leave the generator in torch's state, checked on random distributions once per process."""
    for seed in range(4):
        ours, torchs = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        variates = exponential_variates(torch.Size([4, 50_000]), ours)
        if not torch.equal(variates, torch.empty(4, 50_000).exponential_(generator=torchs)):
            return f"torch {torch.__version__} computes its exponential variates differently on this machine"
        probs = torch.softmax(torch.randn(4, 5000, generator=torch.Generator().manual_seed(seed)) * 3, dim=-1)
        if not draws_like_torch(probs, seed):
            return f"torch {torch.__version__} draws its tokens differently on this machine"
    return None


def draws_like_torch(probs: torch.Tensor, seed: int) -> bool:
    """Whether `vectorised_multinomial` draws `torch.multinomial`'s tokens from `probs` with a generator seeded with
    `seed`, and leaves the generator in the same state."""
    ours, torchs = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    same_tokens = torch.equal(
        vectorised_multinomial(probs, 1, generator=ours), torch_multinomial(probs, 1, generator=torchs)
    )
    return same_tokens and torch.equal(ours.get_state(), torchs.get_state())
