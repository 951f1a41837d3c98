"""3D rotary position phases for packed tokens, and their alignment to compressed kernels.

Every token carries a (t, y, x) position. The head dimension is split into three axes
(HunyuanVideo: ``(16, 56, 56)`` channels, theta 256); each axis rotates channel pairs by
``position * theta ** (-2i / dim)``. Phases are returned as real ``cos`` / ``sin`` tensors with each
frequency repeated for its channel pair (the interleaved convention of HunyuanVideo and diffusers).

**Alignment.** A compressed block has a coarser token grid. Its phases are computed at the full
base-token resolution (one position per ``(1, 2, 2)`` latent patch) from the frames' true time
indices, replicate-padded, and **average-pooled** by the kernel's ratio to the base (``(2, 2, 2)``
for k2, ``(4, 4, 4)`` for k4). As in the official code, ``cos`` and ``sin`` values are averaged,
not angles. :func:`pooled_phases` also offers the naive alternatives a notebook compares against.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

HUNYUAN_AXES = (16, 56, 56)
HUNYUAN_THETA = 256.0
ALIGN_MODES = ("average", "center", "first")


def axis_frequencies(dim: int, theta: float) -> torch.Tensor:
    """Rotation frequencies of one axis: ``theta ** (-2i / dim)`` for i < dim/2. Shape ``(dim/2,)``."""
    if dim % 2:
        raise ValueError(f"each RoPE axis needs an even number of channels, got {dim}")
    return 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)


def phase_grid(t_positions: Sequence[float] | torch.Tensor, height: int, width: int,
               axes_dims: Sequence[int] = HUNYUAN_AXES, theta: float = HUNYUAN_THETA
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Base-resolution phases for frames at ``t_positions`` on a ``height x width`` token grid.

    Args:
        t_positions: time position of each frame, shape ``(T,)``.
        height, width: token grid (latent size / 2 for the base kernel).
        axes_dims: channels per axis (t, y, x); their sum is the head dimension D.
        theta: RoPE base.

    Returns:
        ``cos, sin`` each of shape ``(T, height, width, D)``.
    """
    t = torch.as_tensor(t_positions, dtype=torch.float32)
    grids = torch.meshgrid(t, torch.arange(height, dtype=torch.float32),
                           torch.arange(width, dtype=torch.float32), indexing="ij")
    angles = [g[..., None] * axis_frequencies(d, theta) for g, d in zip(grids, axes_dims)]
    angle = torch.cat(angles, dim=-1).repeat_interleave(2, dim=-1)  # (T, h, w, D)
    return angle.cos(), angle.sin()


def _pad_to_multiple(x: torch.Tensor, ratio: Sequence[int]) -> torch.Tensor:
    """Replicate-pad the last three dims of ``x`` (B, C, T, H, W) up to multiples of ``ratio``."""
    pads = []
    for size, r in zip(reversed(x.shape[-3:]), reversed(tuple(ratio))):
        pads += [0, (-size) % r]
    if not any(pads):
        return x
    return F.pad(x, pads, mode="replicate")


def pool_grid(values: torch.Tensor, ratio: Sequence[int], mode: str = "average") -> torch.Tensor:
    """Pool a ``(T, h, w, D)`` grid down by ``ratio`` = (rt, rh, rw) after replicate padding.

    ``mode``: ``"average"`` (the paper/official alignment), ``"center"`` (take the middle cell of
    each window: a naive alternative) or ``"first"`` (take the window's first cell, i.e. the
    unpooled corner position). Returns ``(ceil(T/rt), ceil(h/rh), ceil(w/rw), D)``.
    """
    if mode not in ALIGN_MODES:
        raise ValueError(f"unknown alignment mode {mode!r}; use one of {ALIGN_MODES}")
    x = _pad_to_multiple(values.permute(3, 0, 1, 2)[None], ratio)  # (1, D, T, h, w)
    if mode == "average":
        x = F.avg_pool3d(x, tuple(ratio), stride=tuple(ratio))
    else:
        offset = [r // 2 if mode == "center" else 0 for r in ratio]
        x = x[:, :, offset[0]::ratio[0], offset[1]::ratio[1], offset[2]::ratio[2]]
    return x[0].permute(1, 2, 3, 0)


def pooled_phases(t_positions: Sequence[float], height: int, width: int, ratio: Sequence[int],
                  axes_dims: Sequence[int] = HUNYUAN_AXES, theta: float = HUNYUAN_THETA,
                  mode: str = "average") -> tuple[torch.Tensor, torch.Tensor]:
    """Phases of a compressed block's tokens, flattened in (t, y, x) order.

    Args:
        t_positions: true time position of each frame in the block, ``(T,)``.
        height, width: the base token grid of one frame (latent H/2, W/2, rounded up).
        ratio: the kernel's ratio to the base kernel (``Kernel.ratio``).
        mode: alignment, see :func:`pool_grid`.

    Returns:
        ``cos, sin`` each ``(n_tokens, D)``.
    """
    cos, sin = phase_grid(t_positions, height, width, axes_dims, theta)
    cos, sin = pool_grid(cos, ratio, mode), pool_grid(sin, ratio, mode)
    return cos.reshape(-1, cos.shape[-1]), sin.reshape(-1, sin.shape[-1])


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of queries or keys.

    Args:
        x: ``(B, heads, N, D)``.
        cos, sin: ``(N, D)`` (interleaved pairs, as returned above).

    Returns:
        ``(B, heads, N, D)``: ``x * cos + rotate_half(x) * sin`` with pairs ``(a, b) -> (-b, a)``.
    """
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)
