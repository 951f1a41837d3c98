"""Flow-matching sampling of one section: sigma schedule with the time shift, Euler and Heun.

Flow matching: ``x_sigma = (1 - sigma) x0 + sigma eps``; the model gives the velocity
``v = eps - x0``; one Euler step from sigma to sigma' is ``x + (sigma' - sigma) v``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

SAMPLERS = ("euler", "heun")


def time_shift(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Warp flow times toward the noisy end: ``shift * t / (1 + (shift - 1) t)``."""
    return shift * t / (1 + (shift - 1) * t)


def noised(x0: torch.Tensor, sigma: torch.Tensor | float, eps: torch.Tensor) -> torch.Tensor:
    """Flow matching's forward process ``x_sigma = (1 - sigma) x0 + sigma eps`` for latents
    ``(B, C, T, H, W)``; ``sigma`` a float or ``(B,)``, one flow time per example."""
    s = torch.as_tensor(sigma, dtype=x0.dtype, device=x0.device).reshape(-1, 1, 1, 1, 1)
    return (1 - s) * x0 + s * eps  # x_sigma = (1 - sigma) x0 + sigma eps


MAX_SHIFT = 7.0  # the official loops cap e**mu here (diffusers' FramePack pipeline: exp_max = 7.0)


def dynamic_shift(noisy_tokens: int, *, base_len: int = 256, max_len: int = 4096, base_shift: float = 0.5,
                  max_shift: float = 1.15) -> float:
    """The official shift for a section of ``noisy_tokens`` tokens.

    ``mu`` is linear in the token count from (256, 0.5) to (4096, 1.15), capped at ln 7;
    the shift is ``e**mu``.

    The keywords move the two points to ``(base_len, base_shift)`` and ``(max_len, max_shift)``:
    a ``FlowMatchEulerDiscreteScheduler`` config's ``base_image_seq_len``, ``max_image_seq_len``,
    ``base_shift`` and ``max_shift`` (whose defaults are the values above).
    """
    if max_len == base_len:
        raise ValueError(f"dynamic_shift needs max_len != base_len (two points of the line), got {max_len}")
    mu = base_shift + (max_shift - base_shift) * (noisy_tokens - base_len) / (max_len - base_len)
    return math.exp(min(mu, math.log(MAX_SHIFT)))


def sigmas(steps: int, shift: float = 1.0) -> torch.Tensor:
    """``steps + 1`` decreasing flow times from 1 to 0, warped by :func:`time_shift`."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not shift > 0:
        raise ValueError(f"shift must be > 0, got {shift!r}")
    return time_shift(torch.linspace(1.0, 0.0, steps + 1), shift)


Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def model_calls(steps: int, method: str = "euler") -> int:
    """Velocity evaluations :func:`sample` makes over ``steps`` steps: one a step with Euler; with
    Heun two a step but the last (its ``sigma' = 0``), ``2 steps - 1``. Step caching uses it to
    know a section's last evaluation."""
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {SAMPLERS}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return steps if method == "euler" else 2 * steps - 1


@torch.no_grad()
def sample(velocity: Velocity, noise: torch.Tensor, sigma_schedule: torch.Tensor, method: str = "euler",
           on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Integrate the flow from pure noise to a clean section.

    Args:
        velocity: ``velocity(x, sigma (B,)) -> v``, both ``(B, C, S, h, w)``.
        noise: ``(B, C, S, h, w)`` standard normal.
        sigma_schedule: decreasing flow times from 1 to 0, see :func:`sigmas`.
        method: ``"euler"`` (first order) or ``"heun"`` (second order, two model calls a step but
            the last).
        on_step: called as ``on_step(i, n)`` after each step.

    Returns:
        The clean section ``(B, C, S, h, w)``.
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {SAMPLERS}")
    x = noise
    B = x.shape[0]
    n = len(sigma_schedule) - 1
    for i in range(n):
        s, s_next = float(sigma_schedule[i]), float(sigma_schedule[i + 1])
        v = velocity(x, torch.full((B,), s))
        x_euler = x + (s_next - s) * v
        if method == "heun" and s_next > 0:
            v_next = velocity(x_euler, torch.full((B,), s_next))
            x = x + (s_next - s) * 0.5 * (v + v_next)
        else:
            x = x_euler
        if on_step:
            on_step(i + 1, n)
    return x
