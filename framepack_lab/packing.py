"""Tensors for one plan step: gather history latents, pad, downsample, apply the tail option.

:func:`pack` turns a :class:`~framepack_lab.plan.Step` and the video's latent buffer into a
:class:`PackedContext`: one :class:`PackedGroup` per context group, each holding latents that are
ready for one of the backend's patch embeddings, plus everything needed for aligned RoPE phases.

Kernels the backend has no embedding for are realised the paper's way: average-pool the
(replicate-padded) input by an integer factor, then use the largest backend kernel that divides
the requested one. E.g. (16, 32, 32) on a backend with k1..k8 is a 2x2x2 average then k8; the
per-frame kernel (1, 8, 8) is a (1, 4, 4) average then k1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F

from .plan import Group, Step
from .rope import HUNYUAN_AXES, HUNYUAN_THETA, _pad_to_multiple, phase_grid, pool_grid, pooled_phases
from .sampler import noised
from .schedule import BASE, Kernel


def check_latent_size(latent_h: int, latent_w: int) -> None:
    """The generated section is tiled exactly by the base kernel (1, 2, 2): H and W must be even."""
    if latent_h < 2 or latent_w < 2 or latent_h % 2 or latent_w % 2:
        raise ValueError(
            f"latent frame {latent_h}x{latent_w} cannot be tiled by the base patch kernel (1, 2, 2): "
            "height and width must be even and >= 2 (for the tiny model, use frame sizes that are "
            "multiples of 8 pixels)"
        )


def realise(kernel: Kernel, available: Iterable[Kernel]) -> tuple[Kernel, tuple[int, int, int]]:
    """The backend kernel that embeds ``kernel`` and the average-pool factor applied first.

    Picks the largest available kernel that divides ``kernel`` in every axis.
    """
    fits = [k for k in available if all(a % b == 0 for a, b in zip(kernel.size, k.size))]
    if not fits:
        names = ", ".join(sorted(k.name for k in available))
        raise ValueError(f"kernel {kernel.name} {kernel.size} cannot be built from the backend's "
                         f"kernels ({names}); it needs one that divides it, at least the base k1")
    best = max(fits, key=lambda k: (k.pf * k.ph * k.pw, k.pf))
    return best, tuple(a // b for a, b in zip(kernel.size, best.size))


@dataclass
class PackedGroup:
    """One context group as tensors.

    Attributes:
        latents: ``(B, C, t, h, w)``, padded and pooled so that ``embed_kernel`` tiles it exactly.
        kernel: the schedule's kernel for the group.
        embed_kernel: the backend kernel that turns ``latents`` into tokens.
        frames, positions: video frame indices and their RoPE time positions.
        rope_ratio: pooling of the base-resolution phase grid that aligns phases to the tokens.
        grid: ``(h, w)`` base token grid of one full latent frame.
        tail: ``None``, ``"ta"`` or ``"tc"``.
    """

    latents: torch.Tensor
    kernel: Kernel
    embed_kernel: Kernel
    frames: tuple[int, ...]
    positions: tuple[int, ...]
    rope_ratio: tuple[int, int, int]
    grid: tuple[int, int]
    tail: str | None = None

    @property
    def n_tokens(self) -> int:
        t, h, w = self.latents.shape[-3:]
        k = self.embed_kernel
        return (t // k.pf) * (h // k.ph) * (w // k.pw)

    def phases(self, axes_dims: Sequence[int] = HUNYUAN_AXES, theta: float = HUNYUAN_THETA,
               mode: str = "average", time_offset: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Aligned RoPE ``cos, sin``, each ``(n_tokens, D)``.

        ``mode`` picks the alignment (``"average"`` as in the paper; ``"center"`` / ``"first"``
        are naive alternatives); ``time_offset=False`` puts every frame at time 0 (an ablation).
        """
        positions = self.positions if time_offset else [0] * len(self.positions)
        if self.tail is None:
            return pooled_phases(positions, *self.grid, self.rope_ratio, axes_dims, theta, mode)
        cos, sin = phase_grid(positions, *self.grid, axes_dims, theta)
        ratio = (len(positions) if self.tail == "tc" else 1, *self.grid)
        cos, sin = pool_grid(cos, ratio, mode), pool_grid(sin, ratio, mode)
        return cos.reshape(-1, cos.shape[-1]), sin.reshape(-1, sin.shape[-1])


@dataclass
class PackedContext:
    """Everything the model needs for one step besides the noisy section itself.

    Attributes:
        groups: packed context groups in the step's (time) order.
        positions: RoPE time positions of the generated frames.
        latent_size: ``(H, W)`` of one latent frame.
        history_noise: flow-time noise level of the generated history in the groups (a float, or
            ``(B,)`` per example in training); 0 = clean. See :func:`noise_history`.
        hidden_time: the step's :attr:`framepack_lab.plan.Step.hidden_time` (true frames between
            the anchor and the section that the RoPE positions leave out).
        image: the video's first frame ``(B, C, 1, h, w)`` as the step sees it (after any discrete
            snapping), for models that read it as image tokens in every step whatever the plan
            packs (``TinyConfig.image_tokens``); ``None`` when not given.
        prepared: what the backend's ``prepare_section`` computed for this step (e.g. RoPE
            tables), set by the runner; ``None`` until then.
    """

    groups: list[PackedGroup]
    positions: tuple[int, ...]
    latent_size: tuple[int, int]
    history_noise: float | torch.Tensor = 0.0
    hidden_time: int = 0
    image: torch.Tensor | None = None
    prepared: Any = None

    @property
    def grid(self) -> tuple[int, int]:
        return self.latent_size[0] // 2, self.latent_size[1] // 2

    @property
    def n_tokens(self) -> int:
        return sum(g.n_tokens for g in self.groups)

    def noisy_phases(self, axes_dims: Sequence[int] = HUNYUAN_AXES, theta: float = HUNYUAN_THETA
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos, sin`` of the generated section's tokens, each ``(S*h*w, D)``."""
        return pooled_phases(self.positions, *self.grid, (1, 1, 1), axes_dims, theta)

    def context_phases(self, axes_dims: Sequence[int] = HUNYUAN_AXES, theta: float = HUNYUAN_THETA,
                       mode: str = "average", time_offset: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos, sin`` of all context tokens in group order, each ``(n_tokens, D)``."""
        D = sum(axes_dims)
        if not self.groups:
            return torch.zeros(0, D), torch.zeros(0, D)
        parts = [g.phases(axes_dims, theta, mode, time_offset) for g in self.groups]
        return torch.cat([c for c, _ in parts]), torch.cat([s for _, s in parts])


def _pack_group(video: torch.Tensor, group: Group, available: Iterable[Kernel]) -> PackedGroup:
    H, W = video.shape[-2:]
    grid = (-(-H // 2), -(-W // 2))
    x = video[:, :, list(group.frames)]  # (B, C, t, H, W)
    if group.tail is not None:  # ta: one latent pixel per frame; tc: one for the whole tail
        x = x.mean(dim=(2, 3, 4) if group.tail == "tc" else (3, 4), keepdim=True)
        x = x.expand(-1, -1, -1, *BASE.size[1:])  # replicate up to the base kernel
        return PackedGroup(x, BASE, BASE, group.frames, group.positions, (1, 1, 1), grid, group.tail)
    embed, pool = realise(group.kernel, available)
    x = _pad_to_multiple(x, group.kernel.size)
    if pool != (1, 1, 1):
        x = F.avg_pool3d(x, pool, stride=pool)
    return PackedGroup(x, group.kernel, embed, group.frames, group.positions, group.kernel.ratio, grid)


# Frames never noised as history: the user's first frame is real, not generated.
CLEAN_FRAMES = (0,)


def noise_history(video: torch.Tensor, step: Step, level: float | torch.Tensor,
                  generator: torch.Generator | Sequence[torch.Generator] | None = None, clean: Iterable[int] = CLEAN_FRAMES) -> torch.Tensor:
    """Noise the context frames a step sees to flow time ``level`` (history noise).

    Diffusion Forcing's history noise (GameNGen's noise augmentation): small errors in generated
    history then look like noise the model has learned to see through. Flow matching's forward
    process, ``z' = (1 - level) z + level eps``, is applied to every context frame of ``step``
    except ``clean`` ones (the user's frame).

    Args:
        video: latent buffer ``(B, C, T, H, W)``; not modified.
        step: the plan step whose context frames are noised.
        level: flow time in [0, 1), a float or ``(B,)`` per example.
        generator: CPU generator for the noise (seeded runs repeat exactly), or one per example.
        clean: frame indices left clean.

    Returns:
        A new ``(B, C, T, H, W)`` buffer.
    """
    skip = set(clean)
    frames = [f for f in step.context_frames if f not in skip]
    level = torch.as_tensor(level, dtype=video.dtype)
    if not frames or not bool((level != 0).any()):
        return video
    out = video.clone()
    x = out[:, :, frames]
    if isinstance(generator, (list, tuple)):  # one generator per example (batched generation)
        eps = torch.cat([torch.randn(x[:1].shape, generator=g, dtype=video.dtype) for g in generator])
    else:
        eps = torch.randn(x.shape, generator=generator, dtype=video.dtype)
    eps = eps.to(video.device)
    out[:, :, frames] = noised(x, level.to(video.device), eps)
    return out


def snap_history(video: torch.Tensor, step: Step, codebook: torch.Tensor | None) -> torch.Tensor:
    """Discrete history (``+D``): every context frame of ``step`` with each latent pixel replaced by
    its nearest ``codebook`` centroid (:func:`framepack_lab.discrete.quantize`); the first frame
    too, so ``K = 1`` really leaves no memory. ``video`` ``(B, C, T, H, W)`` is not modified; with
    no codebook it is returned as is."""
    if codebook is None or not step.context_frames:
        return video
    from .discrete import quantize

    frames = list(step.context_frames)
    out = video.clone()
    out[:, :, frames] = quantize(video[:, :, frames], codebook)
    return out


def pack(video: torch.Tensor, step: Step, available: Iterable[Kernel] = (BASE,),
         history_noise: float | torch.Tensor = 0.0,
         generator: torch.Generator | Sequence[torch.Generator] | None = None,
         codebook: torch.Tensor | None = None) -> PackedContext:
    """Pack the known frames a step sees.

    Args:
        video: the latent buffer ``(B, C, T, H, W)``; frames the step does not list are ignored.
        step: a plan step.
        available: the kernels the backend has patch embeddings for.
        history_noise: noise the context frames (all but the first frame) to this flow time
            first (:func:`noise_history`); recorded in the result for the model.
        generator: the noise's generator when ``history_noise`` is not 0.
        codebook: ``(K, C)``: snap the context frames to it first (discrete history, ``+D``,
            :func:`snap_history`), then noise them.

    Returns:
        The :class:`PackedContext` of the step.
    """
    if video.ndim != 5:
        raise ValueError(f"expected latents of shape (B, C, T, H, W), got {tuple(video.shape)}")
    H, W = video.shape[-2:]
    check_latent_size(H, W)
    needed = max(max(step.generated), *(f for g in step.groups for f in g.frames), 0)
    if needed >= video.shape[2]:
        raise ValueError(f"step needs frame {needed} but the latent buffer has {video.shape[2]} frames")
    available = tuple(available)
    video = snap_history(video, step, codebook)
    video = noise_history(video, step, history_noise, generator)
    groups = [_pack_group(video, g, available) for g in step.groups]
    image = video[:, :, CLEAN_FRAMES[0]:CLEAN_FRAMES[0] + 1]  # the user's frame, never noised
    return PackedContext(groups, step.positions, (H, W), history_noise, step.hidden_time, image)
