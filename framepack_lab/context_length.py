"""The paper's token arithmetic, Eq. 1-3: how long the context of one step is as history grows.

With ``L_f`` tokens per frame at the base kernel, the i-th most important history frame gets
``L_f / lambda**i`` tokens (Eq. 1), so ``T`` packed history frames and ``S`` generated frames cost
a geometric sum (Eq. 2) that stays below ``(S + lambda / (lambda - 1)) L_f`` however long the
video grows (Eq. 3); a plain DiT that attends to every frame costs ``L_f (T + S)``. The real token
counts of a schedule at a latent size are :meth:`~framepack_lab.schedule.Schedule.token_count`.

Plain Python (no torch); re-exported by :mod:`~framepack_lab.schedule`.
"""

from __future__ import annotations

import math


def _check_lambda(lam: float) -> None:
    if not (isinstance(lam, (int, float)) and lam > 1 and math.isfinite(lam)):
        raise ValueError(f"lambda must be a finite number > 1 (the paper uses 2), got {lam!r}")


def _check_sizes(lam: float, L_f: float, S: int, T: int = 0) -> None:
    """The arguments of Eq. 2 and Eq. 3, checked in this order: lambda, L_f, T, S."""
    _check_lambda(lam)
    if L_f <= 0:
        raise ValueError(f"L_f (tokens per frame) must be > 0, got {L_f}")
    if T < 0:
        raise ValueError(f"T (history frames) must be >= 0, got {T}")
    if S < 1:
        raise ValueError(f"S (generated frames per section) must be >= 1, got {S}")


def frame_length(L_f: float, lam: float, i: int) -> float:
    """Eq. 1: ``phi(F_i) = L_f / lambda**i``, the context length of the i-th most important frame."""
    _check_lambda(lam)
    if i < 0:
        raise ValueError(f"frame index i must be >= 0, got {i}")
    return L_f / lam**i  # Eq. 1


def context_length(L_f: float, lam: float, T: int, S: int) -> float:
    """Eq. 2: total context of S generated frames and T packed history frames.

    ``L = S L_f + L_f (1 - lambda**-T) / (1 - lambda**-1)``.
    """
    _check_sizes(lam, L_f, S, T)
    return S * L_f + L_f * (1 - lam**-T) / (1 - 1 / lam)  # Eq. 2


def context_length_limit(L_f: float, lam: float, S: int) -> float:
    """Eq. 3: the limit of Eq. 2 as T -> infinity, ``(S + lambda / (lambda - 1)) L_f``."""
    _check_sizes(lam, L_f, S)
    return (S + lam / (lam - 1)) * L_f  # Eq. 3


def unpacked_length(L_f: float, T: int, S: int) -> float:
    """A plain DiT that attends to every frame: ``L = L_f (T + S)``."""
    return L_f * (T + S)
