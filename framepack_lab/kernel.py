"""Patchify kernels: ``(pf, ph, pw)`` over latent (frames, height, width), and their token counts.

The base kernel is ``(1, 2, 2)`` (:data:`BASE`); the paper's ``kN`` is ``(N, 2N, 2N)``
(:meth:`Kernel.k`). A kernel writes its own name (``k2``, ``k1h4w8``); names are read by
:func:`~framepack_lab.schedule.parse_kernel`, part of the schedule grammar. Sizes are bounded by
:data:`MAX_KERNEL_SIZE`, so a mistyped kernel fails at once.

Plain Python (no torch); re-exported by :mod:`~framepack_lab.schedule`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_KERNEL_SIZE = 64  # largest kernel size on any axis (k32 = (32, 64, 64) is the largest kN)


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def _grammar() -> str:
    """The schedule grammar, which a kernel's errors end with: kernels are typed in schedule names."""
    from .schedule import GRAMMAR  # imported when needed: schedule.py imports this module

    return GRAMMAR


@dataclass(frozen=True, order=True)
class Kernel:
    """A patchify kernel ``(pf, ph, pw)`` over latent (frames, height, width).

    The base kernel is ``(1, 2, 2)``; the paper's ``kN`` is ``(N, 2N, 2N)``. Every size must be
    a power of two and at least the base size, so that any kernel is the base kernel applied
    after an integer average-pool (``ratio``).
    """

    pf: int
    ph: int
    pw: int

    def __post_init__(self) -> None:
        for axis, size, minimum in (("pf", self.pf, 1), ("ph", self.ph, 2), ("pw", self.pw, 2)):
            if not isinstance(size, int) or not _is_power_of_two(size) or size < minimum:
                raise ValueError(
                    f"kernel {(self.pf, self.ph, self.pw)}: {axis}={size} must be a power of two "
                    f">= {minimum} (the base kernel is (1, 2, 2)); {_grammar()}"
                )
            if size > MAX_KERNEL_SIZE:
                raise ValueError(
                    f"kernel {(self.pf, self.ph, self.pw)}: {axis}={size} is larger than {MAX_KERNEL_SIZE}, the "
                    f"largest kernel size this library accepts (MAX_KERNEL_SIZE); use a smaller kernel, "
                    f"e.g. k8 = (8, 16, 16) is already 512x fewer tokens than the base"
                )

    @classmethod
    def k(cls, n: int) -> "Kernel":
        """The paper's shorthand ``kN`` = ``(N, 2N, 2N)``."""
        if not isinstance(n, int) or not _is_power_of_two(n):
            raise ValueError(f"k{n}: N must be a power of two (k1, k2, k4, k8, ...); {_grammar()}")
        if 2 * n > MAX_KERNEL_SIZE:
            raise ValueError(f"k{n}: N must be at most {MAX_KERNEL_SIZE // 2} (kN = (N, 2N, 2N) and no kernel "
                             f"size may exceed MAX_KERNEL_SIZE = {MAX_KERNEL_SIZE}); use k1 .. k{MAX_KERNEL_SIZE // 2}")
        return cls(n, 2 * n, 2 * n)

    @property
    def size(self) -> tuple[int, int, int]:
        return (self.pf, self.ph, self.pw)

    @property
    def compression(self) -> int:
        """How many times fewer tokens than the base kernel (1, 2, 2): ``pf*ph*pw / 4``."""
        return self.pf * self.ph * self.pw // 4

    @property
    def ratio(self) -> tuple[int, int, int]:
        """The average-pool factor that maps base-kernel tokens onto this kernel's tokens."""
        return (self.pf, self.ph // 2, self.pw // 2)

    @property
    def name(self) -> str:
        if self.ph == self.pw == 2 * self.pf:
            return f"k{self.pf}"
        return f"k{self.pf}h{self.ph}w{self.pw}"

    def tokens(self, frames: int, latent_h: int, latent_w: int) -> int:
        """Tokens for ``frames`` latent frames of ``latent_h x latent_w``, replicate-padded up to
        a multiple of the kernel in t, h and w."""
        return (
            math.ceil(frames / self.pf)
            * math.ceil(latent_h / self.ph)
            * math.ceil(latent_w / self.pw)
        )

    def __str__(self) -> str:
        return self.name


BASE = Kernel(1, 2, 2)
