"""Our plans onto the inputs of diffusers' HunyuanVideo FramePack transformer; frame arithmetic.

**Frames.** The VAE compresses space 8x and time 4x, the first frame alone (causal): ``T`` latent
frames decode to ``1 + 4 (T - 1)`` pixel frames, and ``1 + 4k`` pixel frames encode to ``1 + k``.
Every "frame" in our plans is a *latent* frame: the official 9-frame section is 33 pixel frames
(about 1.1 s at 30 fps). ``generate(...).latents`` holds latent frames, ``.frames`` pixel frames.
Frame sizes must be multiples of 16 pixels (8x VAE, then the (1, 2, 2) patch).

**Plans onto the transformer's inputs** (:func:`map_context`). diffusers takes one tensor per
kernel: ``latents_clean`` (k1 = (1, 2, 2), ``proj``), ``latents_history_2x`` (k2 = (2, 4, 4),
``proj_2x``) and ``latents_history_4x`` (k4 = (4, 8, 8), ``proj_4x``), each with its frame indices
(RoPE time positions). Attention is over the whole set, so the order of tokens does not matter; all
groups of one kernel (e.g. the start anchor and the post frame, both 1x) are concatenated along
time with their positions. The packer has already replicate-padded every group to its kernel, so
the concatenation is clean and diffusers' RoPE pooling (replicate-pad, average) sees each group's
own frames. What cannot be expressed is refused by :func:`check_supported`, the one place that
says so: kernels other than k1 / k2 / k4 (our packer builds e.g. k8 by pooling before k4, but
diffusers embeds every history tensor at full latent resolution and derives its RoPE grid from the
noisy latents, so a pooled tensor cannot be passed) and the ``ta`` / ``tc`` tails (single latent
pixels). ``td`` is fine.

Our plans drop blocks that have no frames yet, but diffusers' forward needs all three tensors (with
any of them ``None`` it fails: its RoPE variables for that group are never set; diffusers 0.42).
A kernel with no group therefore gets one all-zero block of that kernel (1, 2 or 4 frames) placed
just past the step's last time position: the same zeros the official loops put in empty history
slots. So early steps of our own plans see a few filler tokens more than ``Step.token_count``.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ...packing import PackedContext, PackedGroup
from ...schedule import Kernel, Schedule, as_schedule

K1, K2, K4 = Kernel.k(1), Kernel.k(2), Kernel.k(4)
KERNELS = frozenset({K1, K2, K4})
# kernel -> (latents argument, indices argument) of HunyuanVideoFramepackTransformer3DModel.forward
INPUTS = {
    K1: ("latents_clean", "indices_latents_clean"),
    K2: ("latents_history_2x", "indices_latents_history_2x"),
    K4: ("latents_history_4x", "indices_latents_history_4x"),
}
SUPPORTED = ("k1 (1, 2, 2), k2 (2, 4, 4) and k4 (4, 8, 8), with no tail or tail 'td'; e.g. the official "
             "'f1k1_x_g9_f1k1f2k2f16k4_td'")
TEMPORAL, SPATIAL = 4, 8       # VAE compression of HunyuanVideo


# ------------------------------------------------------------------------------- frame maths
def pixel_frames(latent_frames: int) -> int:
    """Pixel frames decoded from ``latent_frames`` latent frames: ``1 + 4 (T - 1)``."""
    return 1 + TEMPORAL * (latent_frames - 1)


def latent_frames(pixel_frames: int) -> int:
    """Latent frames of ``1 + 4k`` pixel frames: ``1 + k`` (other counts raise ``ValueError``)."""
    if pixel_frames < 1 or (pixel_frames - 1) % TEMPORAL:
        raise ValueError(f"{pixel_frames} pixel frames: HunyuanVideo's VAE takes 1 + 4k frames (1, 5, 9, 33, ...): "
                         "the first frame alone, then groups of 4")
    return 1 + (pixel_frames - 1) // TEMPORAL


# ----------------------------------------------------------------------------------- refusals
def check_supported(where: str, kernels: Iterable[Kernel] = (), tail: str | None = None,
                    embedded_with: Kernel | None = None) -> None:
    """The one refusal for what the checkpoint cannot take: ``ValueError`` naming ``where``, what
    is wrong, and what it supports.

    Args:
        where: what is being checked, e.g. ``"schedule 'td_f16k8f2k2f1k1_g9'"``.
        kernels: kernels asked for; each must be k1, k2 or k4 (a patch embedding of the checkpoint).
        tail: a tail option; ``"ta"`` / ``"tc"`` (old frames as single latent pixels) are refused.
        embedded_with: for a packed group, the kernel the packer embeds it with; refused when it is
            not the group's own kernel (the group was pooled first, which diffusers cannot express).
    """
    kernels = set(kernels)
    problems = []
    bad = sorted(k for k in kernels if k not in KERNELS)
    if bad:
        names = ", ".join(f"{k.name} {k.size}" for k in bad)
        problems.append(f"kernel {names}, which the HunyuanVideo FramePack checkpoint has no patch embedding for")
    elif embedded_with is not None and embedded_with not in kernels:
        problems.append(f"a group pooled and then embedded with {embedded_with.name}, which diffusers' inputs "
                        "cannot express (pack with this backend's kernels)")
    if tail not in (None, "td"):
        problems.append(f"tail option {tail!r}, which packs old frames into single latent pixels that diffusers' "
                        "transformer inputs cannot take")
    if problems:
        raise ValueError(f"{where} uses {' and '.join(problems)}; it supports {SUPPORTED}")


def check_schedule(schedule: Schedule | str) -> Schedule:
    """Refuse a schedule the checkpoint cannot run (``ValueError`` naming what it supports)."""
    s = as_schedule(schedule)
    check_supported(f"schedule {s.name!r}", [b.kernel for b in s.blocks], s.tail)
    return s


# ------------------------------------------------------------------------- plans -> inputs
def _time_positions(g: PackedGroup) -> list[int]:
    """One RoPE time position per latent frame of ``g.latents``: the packer replicate-padded the
    group up to its kernel, so the padding frames repeat the last position."""
    t = g.latents.shape[2]
    return list(g.positions) + [g.positions[-1]] * (t - len(g.positions))


def map_context(context: PackedContext, x_t: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The transformer inputs of one packed step.

    Args:
        context: the step's :class:`~framepack_lab.packing.PackedContext` (k1 / k2 / k4 groups).
        x_t: the noisy section ``(B, C, S, h, w)`` (for batch, channels and device); ``None``
            takes them from the context's groups (``(B, C, t, h, w)`` each), which must exist.

    Returns:
        ``indices_latents (S,)`` and, per kernel, ``latents_clean (B, C, t1, h, w)`` +
        ``indices_latents_clean (t1,)``, ``latents_history_2x (B, C, t2, h2, w2)`` +
        ``indices_latents_history_2x (t2,)``, ``latents_history_4x (B, C, t4, h4, w4)`` +
        ``indices_latents_history_4x (t4,)``: all groups of a kernel concatenated along time (sorted
        by position), ``t`` a multiple of the kernel's frames and ``h2, w2`` / ``h4, w4``
        replicate-padded to it. A kernel without groups gets one zero block of its frame count,
        placed after the step's last position (diffusers' forward needs all three).
    """
    if x_t is None and not context.groups:
        raise ValueError("map_context: a context without groups has no batch size; pass the noisy section x_t")
    like = x_t if x_t is not None else context.groups[0].latents
    B, C = like.shape[:2]
    h, w = context.latent_size
    by_kernel: dict[Kernel, list[PackedGroup]] = {k: [] for k in INPUTS}
    for g in context.groups:
        check_supported(f"a group of frames {g.frames[0]}..{g.frames[-1]}", [g.kernel], g.tail, g.embed_kernel)
        by_kernel[g.kernel].append(g)
    end = max([*context.positions, *(p for g in context.groups for p in g.positions)])
    as_index = lambda xs: torch.tensor(xs, dtype=torch.long, device=like.device)  # noqa: E731
    inputs = {"indices_latents": as_index(list(context.positions))}
    for kernel, (latents_name, indices_name) in INPUTS.items():
        groups = sorted(by_kernel[kernel], key=lambda g: g.positions[0])
        if groups:
            latents = torch.cat([g.latents for g in groups], dim=2)
            positions = [p for g in groups for p in _time_positions(g)]
        else:  # a filler block, as the official loops fill empty history slots
            latents = like.new_zeros(B, C, kernel.pf, h, w)
            positions, end = list(range(end + 1, end + 1 + kernel.pf)), end + kernel.pf
        inputs[latents_name] = latents.to(like.device)
        inputs[indices_name] = as_index(positions)
    return inputs


def place_end_latent(inputs: dict[str, torch.Tensor], context: PackedContext,
                     end_latent: torch.Tensor) -> dict[str, torch.Tensor]:
    """The inputs with the end frame's latent in the 1x slot right after the section.

    That is where diffusers' pipeline puts ``last_image`` in the inverted order's first section
    (``latents_history_1x = last_image_latents``): the slot at RoPE position ``max(section) + 1``,
    empty in that section. The official plan has that slot (its blank frame), and it is replaced;
    our own inverted plans leave empty blocks out, so there the end frame is added as one more 1x
    frame at that position.

    Args:
        inputs: :func:`map_context`'s dict for ``context``.
        context: the section's packed context (for the section's positions).
        end_latent: ``(1 or B, C, 1, h, w)``, on the inputs' device and dtype.

    Returns:
        A new dict: ``latents_clean`` (and ``indices_latents_clean`` when the slot was added) are new
        tensors, the rest are the same.
    """
    slot = max(context.positions) + 1
    clean, where = inputs["latents_clean"], inputs["indices_latents_clean"]  # (B, C, t1, h, w), (t1,)
    B, C, _, h, w = clean.shape
    if end_latent.ndim != 5 or end_latent.shape[0] not in (1, B) or tuple(end_latent.shape[1:]) != (C, 1, h, w):
        raise ValueError(f"the end frame's latent is {tuple(end_latent.shape)} but this section's frames are "
                         f"(B={B}, C={C}, 1, {h}, {w}); make the condition with a last_image of the first frame's size")
    end = end_latent.expand(B, -1, -1, -1, -1)
    if slot in where.tolist():
        j = where.tolist().index(slot)
        return {**inputs, "latents_clean": torch.cat([clean[:, :, :j], end, clean[:, :, j + 1:]], dim=2)}
    return {**inputs, "latents_clean": torch.cat([clean, end], dim=2),
            "indices_latents_clean": torch.cat([where, where.new_tensor([slot])])}
