"""See what the model sees: one plan step's packed context, decoded, beside its section's denoising.

For a step of a plan, :func:`context_as_seen` decodes every context frame back from the packed
latent the model receives, at its kernel's coarseness, and :func:`denoise_trace` runs that
step's sampler while recording the model's clean-section estimate (x0) at every sampler step.
:func:`model_view` draws both in one figure::

    result = generate(backend, first, n_frames=64)
    viz.model_view(backend, result, step_index=3)

**How coarse is "as the model sees it".** A kernel ``(pf, ph, pw)`` makes one token of
``pf*ph*pw`` latent pixels, with the same token width as the base kernel ``(1, 2, 2)``. Its patch
embedding starts (the official initialisation) as the base embedding of the patch average-pooled by
the kernel's ratio to the base, ``proj_k(x) = proj(avg_pool3d(x, ratio))`` with ``ratio = (pf,
ph/2, pw/2)`` (k2: 2x2x2, k4: 4x4x4). So each context group's packed latent (from
:func:`framepack_lab.packing.pack`) is average-pooled to that ratio, repeated back to the full
latent grid (piecewise constant on ``ratio`` blocks) and decoded: a k4 frame comes out 4x coarser
in time, height and width than a k1 frame. A tail frame (``ta``/``tc``) is one latent pixel.

**The denoising.** Flow matching, ``x_s = (1 - s) x0 + s eps`` and ``v = eps - x0``, so the model's
estimate of the clean section at every sampler step is ``x0 = x_s - s v``; the last one is the
section the sampler returns (an Euler step to ``s = 0`` is exactly ``x - s v``).

Imports torch, numpy and matplotlib; the sampler, packer and backend are the library's own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from ..backend import HISTORY_NOISE
from ..generate import DEFAULT_HISTORY_NOISE, GenerationResult, step_codebook_k
from ..packing import PackedGroup, pack
from ..plan import Plan, Step
from ..sampler import SAMPLERS, dynamic_shift, sample, sigmas
from ..schedule import BASE, Kernel
from .style import GENERATED_COLOUR, TAIL_COLOUR, kernel_colour, kernel_label

DEFAULT_SHOWN_STEPS = 5  # sampler steps drawn in a denoising row (evenly spaced, the last included)


# ------------------------------------------------------------------------------------ input
def _video_latents(result_or_latents) -> tuple[torch.Tensor, Plan | None]:
    """``(1, C, T, h, w)`` latents and the result's plan (None for bare latents)."""
    if isinstance(result_or_latents, GenerationResult):
        return result_or_latents.latents[None], result_or_latents.plan
    if isinstance(result_or_latents, torch.Tensor):
        x = result_or_latents
        if x.ndim == 4:
            x = x[None]
        if x.ndim == 5 and x.shape[0] == 1:
            return x, None
    shape = tuple(getattr(result_or_latents, "shape", ()))
    raise ValueError(f"expected a GenerationResult or video latents (C, T, h, w) / (1, C, T, h, w), got "
                     f"{type(result_or_latents).__name__}{' of shape ' + str(shape) if shape else ''}; pass "
                     "generate(...)'s result or its .latents")


def _checked_step(plan: Plan | None, step: "Step | int") -> Step:
    """The plan step ``step`` names (a :class:`Step`, or its index in ``plan``), checked."""
    if isinstance(step, Step):
        return step
    if plan is None:
        raise ValueError(f"step={step!r} is an index but no plan was given; pass plan= (or a GenerationResult, "
                         "which carries its plan), or the Step itself")
    n = len(plan.steps)
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step < n:
        raise ValueError(f"step index {step!r} is not a step of this {plan.order} plan: it has {n} steps, "
                         f"indices 0 to {n - 1} in sampling order (step 0 is generated first)")
    return plan.steps[int(step)]


def _buffer(latents: torch.Tensor, step: Step) -> torch.Tensor:
    """The latent buffer padded with zero frames up to the last frame ``step`` touches (a plan's
    last section may run past the trimmed video)."""
    needed = max(max(step.generated), *step.context_frames, 0) + 1
    if needed > latents.shape[2]:
        pad = latents.new_zeros(*latents.shape[:2], needed - latents.shape[2], *latents.shape[3:])
        latents = torch.cat([latents, pad], dim=2)
    return latents


def _history_noise(backend, history_noise: float | None) -> float:
    """``generate``'s rule: the backend's default level when None; refused when the backend lacks it."""
    if history_noise is None:
        return DEFAULT_HISTORY_NOISE if HISTORY_NOISE in backend.features else 0.0
    if not (isinstance(history_noise, (int, float)) and 0.0 <= float(history_noise) < 1.0):
        raise ValueError(f"history_noise must be a flow time in [0, 1) or None (the backend's default), "
                         f"got {history_noise!r}")
    if history_noise > 0 and HISTORY_NOISE not in backend.features:
        raise ValueError(f"backend {backend.name!r} was not trained with history noise; leave history_noise=None "
                         "(or 0)")
    return float(history_noise)


def _codebook(backend, step: Step) -> torch.Tensor | None:
    """The discrete-history codebook a ``+D`` step snaps its history to, as ``generate`` packs it
    (the backend's ``ValueError`` when it has none of that size); None without ``+D``."""
    k = step_codebook_k(step)
    return None if k is None else backend.codebook(k)


def _decode_frames(backend, latents: torch.Tensor) -> np.ndarray:
    """Latent frames ``(C, n, h, w)`` -> images ``(n, H, W, 3)``, each decoded as a one-frame video
    (exact for a per-frame autoencoder, a preview for a causal video VAE)."""
    frames = backend.decode(latents.transpose(0, 1)[:, :, None])  # (n, C, 1, h, w) -> (n, T', H, W, 3)
    return frames[:, -1].detach().float().cpu().numpy()


# ----------------------------------------------------------------------------- the context
@dataclass
class SeenFrame:
    """One context frame as the model receives it.

    Attributes:
        frame: its index in the video; ``slab``: the frames that share its tokens (a kernel with
            ``pf > 1`` packs ``pf`` consecutive frames into one token slab; a ``tc`` tail all).
        kernel: the schedule's kernel for it (the base kernel for a tail frame); ``tail``: None,
            ``"ta"`` or ``"tc"``.
        latent: ``(C, h, w)`` the packed latent, pooled to the kernel's ratio and repeated back to
            the full latent grid (piecewise constant on ``kernel.ratio`` blocks).
        image: ``(H, W, 3)`` that latent decoded, in [0, 1].
        token_grid: ``(rows, columns)`` of the tokens over one frame (``(1, 1)`` for a tail frame).
        slab_tokens: tokens of its slab (``rows * columns``; a ``ta`` tail frame 1, a ``tc`` tail 1 in all).
        complete: False when a frame of its slab lies past the latents given: a plan's last section
            may run past ``n_frames`` and ``generate`` trims those frames from its result, so they
            are packed here as zeros, not as the model saw them.
    """

    frame: int
    slab: tuple[int, ...]
    kernel: Kernel
    latent: torch.Tensor
    image: np.ndarray
    token_grid: tuple[int, int]
    slab_tokens: int
    tail: str | None = None
    complete: bool = True


def _seen_latents(g: PackedGroup, h: int, w: int) -> list[tuple[tuple[int, ...], torch.Tensor, tuple[int, int], int]]:
    """Per frame of a packed group: ``(slab, latent (C, h, w), token grid, slab tokens)``."""
    x = g.latents[0]  # (C, t, h', w'): padded to the kernel, pooled to the embed kernel's input
    n = len(g.frames)
    if g.tail is not None:  # ta: one latent pixel per frame; tc: one for the whole tail
        pixel = x[:, :, :1, :1]  # (C, t, 1, 1)
        out = []
        for j in range(n):
            slab = g.frames if g.tail == "tc" else (g.frames[j],)
            out.append((slab, pixel[:, 0 if g.tail == "tc" else j].expand(-1, h, w), (1, 1), 1))
        return out
    k = g.kernel
    # pool the rest of the way to the kernel's ratio to the base: proj_k(x) = proj(avg_pool3d(x, ratio))
    rest = tuple(r // (s // e) for r, s, e in zip(k.ratio, k.size, g.embed_kernel.size))
    pooled = F.avg_pool3d(x, rest, stride=rest) if rest != (1, 1, 1) else x
    ratio = k.ratio
    full = pooled.repeat_interleave(ratio[0], 1).repeat_interleave(ratio[1], 2).repeat_interleave(ratio[2], 3)
    grid = (-(-h // k.ph), -(-w // k.pw))
    out = []
    for j in range(n):
        s0 = (j // k.pf) * k.pf
        slab = g.frames[s0:s0 + k.pf]
        out.append((slab, full[:, j, :h, :w], grid, grid[0] * grid[1]))
    return out


def context_as_seen(backend, latents, step: "Step | int", plan: Plan | None = None,
                    history_noise: float | None = None, seed: int = 0) -> list[SeenFrame]:
    """Every context frame of ``step``, decoded from the packed latent the model receives.

    Args:
        backend: the model (its ``kernels``, ``decode`` and ``features`` are used).
        latents: a :class:`~framepack_lab.generate.GenerationResult` or its video latents
            ``(C, T, h, w)`` (or ``(1, C, T, h, w)``); the step's context frames must hold what
            they held when the step ran (true of a finished video: every frame is written once).
        step: a plan :class:`~framepack_lab.plan.Step`, or its index in ``plan`` (or the result's plan).
        plan: the plan, when ``step`` is an index and ``latents`` are bare.
        history_noise: the level the history is noised to before packing, as
            :func:`~framepack_lab.generate.generate` does (None: the backend's default; 0: clean).
            A ``+D`` step's history is snapped to the backend's codebook first, as ``generate`` does.
        seed: seeds that noise (``generate`` draws it from the run's generator, so the grain differs).

    Returns:
        One :class:`SeenFrame` per context frame, in the step's group order (time order).

    Raises:
        ValueError: a step index outside the plan, latents of the wrong shape, a bad noise level.
    """
    x, result_plan = _video_latents(latents)
    step = _checked_step(plan or result_plan, step)
    level = _history_noise(backend, history_noise)
    given = x.shape[2]
    x = _buffer(x, step)
    h, w = x.shape[-2:]
    gen = torch.Generator().manual_seed(int(seed))
    codebook = _codebook(backend, step)
    context = pack(x.cpu(), step, backend.kernels, level, gen, None if codebook is None else codebook.cpu())
    rows = [(g, *r) for g in context.groups for r in _seen_latents(g, h, w)]
    if not rows:
        return []
    images = _decode_frames(backend, torch.stack([lat for _, _, lat, _, _ in rows], dim=1))
    frames = [f for g in context.groups for f in g.frames]
    return [SeenFrame(f, slab, BASE if g.tail else g.kernel, lat, img, grid, tokens, g.tail, max(slab) < given)
            for f, (g, slab, lat, grid, tokens), img in zip(frames, rows, images)]


# --------------------------------------------------------------------------- the denoising
@dataclass
class DenoiseTrace:
    """The model's clean-section estimates across one step's sampler steps.

    Attributes:
        step: the plan step; ``sigmas``: ``(n + 1,)`` the flow times, from 1 to 0.
        noise: ``(1, C, S, h, w)`` the starting noise.
        x0: ``(n, C, S, h, w)`` the estimate ``x0 = x_s - s v`` at the start of each sampler step.
        section: ``(C, S, h, w)`` what :func:`~framepack_lab.sampler.sample` returned.
    """

    step: Step
    sigmas: torch.Tensor
    noise: torch.Tensor
    x0: torch.Tensor
    section: torch.Tensor
    _decode: Callable[[torch.Tensor], np.ndarray] = field(repr=False, default=None)

    def frames(self, steps: Sequence[int] | None = None) -> np.ndarray:
        """The estimates decoded: ``(len(steps), S, H, W, 3)`` (default: every sampler step)."""
        steps = range(len(self.x0)) if steps is None else list(steps)
        return np.stack([self._decode(self.x0[i]) for i in steps])


def denoise_trace(backend, latents, step: "Step | int", steps: int = 20, seed: int = 0,
                  plan: Plan | None = None, shift: float | None = None, sampler: str = "euler",
                  history_noise: float | None = None, cond: Any = None) -> DenoiseTrace:
    """Run the sampler for ``step`` as :func:`~framepack_lab.generate.generate` does, recording
    the model's x0 estimate at every sampler step.

    The context is packed from ``latents`` (see :func:`context_as_seen`); the noise and the
    history noise are drawn from one generator seeded with ``seed``, in ``generate``'s order, so
    step 0 with the run's seed reproduces the run's first section.

    Args:
        backend, latents, step, plan, history_noise: as :func:`context_as_seen`.
        steps, seed, shift, sampler: as ``generate`` (``shift=None``: the official rule for the
            section's noisy token count).
        cond: the backend's conditioning (e.g. HunyuanVideo's prompt), passed to ``velocity``.

    Returns:
        A :class:`DenoiseTrace`.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    x, result_plan = _video_latents(latents)
    step = _checked_step(plan or result_plan, step)
    level = _history_noise(backend, history_noise)
    x = _buffer(x, step)
    C, (h, w) = x.shape[1], x.shape[-2:]
    shift = dynamic_shift(BASE.tokens(step.schedule.generated, h, w)) if shift is None else float(shift)
    sched = sigmas(steps, shift)
    gen = torch.Generator().manual_seed(int(seed))
    device = getattr(backend, "device", x.device)
    context = pack(x.to(device), step, backend.kernels, level, gen, _codebook(backend, step))
    context = dataclasses.replace(context, prepared=backend.prepare_section(context))
    noise = torch.randn((1, C, len(step.generated), h, w), generator=gen).to(device)
    extra = () if cond is None else (cond,)

    x0s: list[torch.Tensor] = []
    first_call = [True]

    def velocity(xt, s):
        v = backend.velocity(xt, s.to(xt.device), context, *extra)
        if first_call[0]:  # the step's first call is at (x_i, sigma_i); Heun's second is not recorded
            x0s.append((xt - s.to(xt.device).view(-1, 1, 1, 1, 1) * v)[0])  # x0 = x_s - s v
            first_call[0] = False
        return v

    def on_step(i, n):
        first_call[0] = True

    section = sample(velocity, noise, sched, sampler, on_step=on_step)
    return DenoiseTrace(step, sched, noise, torch.stack(x0s), section[0],
                        lambda lat: _decode_frames(backend, lat))


# ------------------------------------------------------------------------------- the figure
def _shown_steps(n: int, k: int) -> list[int]:
    """``k`` sampler steps of ``n``, evenly spaced, first and last included."""
    m = min(k, n)
    return sorted({round(i * (n - 1) / max(m - 1, 1)) for i in range(m)})


def _draw_tokens(ax, seen: SeenFrame, px_per_latent: tuple[float, float]) -> None:
    H, W = seen.image.shape[:2]
    colour = TAIL_COLOUR if seen.tail else kernel_colour(seen.kernel)
    if not seen.tail:
        for r in range(1, seen.token_grid[0]):
            ax.axhline(r * seen.kernel.ph * px_per_latent[0] - 0.5, color=colour, lw=0.8)
        for c in range(1, seen.token_grid[1]):
            ax.axvline(c * seen.kernel.pw * px_per_latent[1] - 0.5, color=colour, lw=0.8)
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(3)


def _frames_text(frames: Sequence[int]) -> str:
    return f"frame {frames[0]}" if len(frames) == 1 else f"frames {frames[0]}\u2013{frames[-1]}"


def model_view(backend, result_or_latents, step_index: "Step | int" = 0, plan: Plan | None = None,
               steps: int = 20, seed: int = 0, shown: int = DEFAULT_SHOWN_STEPS, history_noise: float | None = None,
               shift: float | None = None, sampler: str = "euler", cond: Any = None, scale: float = 1.1):
    """One figure of what the model sees at one step of a plan, and what it makes of it.

    Left, in time order: the step's context, one panel per token slab (frames packed into the same
    tokens look alike), each decoded from its packed latent at its kernel's coarseness with the
    token grid over it, framed in the kernel's colour and labelled with its frames, kernel and
    tokens. Right: the section being generated, one row per frame, its x0 estimate at ``shown``
    evenly spaced sampler steps from pure noise (left) to the clean section (right).

    Args:
        backend: the model.
        result_or_latents: :func:`~framepack_lab.generate.generate`'s result, or video latents
            ``(C, T, h, w)`` with ``plan``.
        step_index: the step, as its index in the plan's sampling order (or a ``Step``).
        plan: the plan, when bare latents are given.
        steps, seed, shift, sampler, history_noise, cond: the step's sampler, as
            :func:`denoise_trace`.
        shown: sampler steps drawn per row (at least 2: the noise and the result).
        scale: inches per image.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: a step index outside the plan (before any model call), ``shown < 2``, or
            any refusal of :func:`denoise_trace`.
    """
    x, result_plan = _video_latents(result_or_latents)
    plan = plan or result_plan
    step = _checked_step(plan, step_index)
    if isinstance(shown, bool) or not isinstance(shown, int) or shown < 2:
        raise ValueError(f"shown must be a whole number >= 2 (the noise and the clean section at least), got {shown!r}")
    seen = context_as_seen(backend, x, step, history_noise=history_noise, seed=seed)
    trace = denoise_trace(backend, x, step, steps, seed, shift=shift, sampler=sampler,
                          history_noise=history_noise, cond=cond)
    which = _shown_steps(len(trace.x0), shown)
    rows = trace.frames(which)  # (k, S, H, W, 3)

    slabs: list[SeenFrame] = []
    for s in seen:  # one panel per token slab
        if not slabs or slabs[-1].slab != s.slab:
            slabs.append(s)
    S, k = len(step.generated), len(which)
    ctx_cols = max(1, -(-len(slabs) // S))
    ctx_rows = S if slabs else 1
    fig = plt.figure(figsize=(scale * (max(ctx_cols, 2) + k + 1) + 1.2, scale * S * 1.3 + 1.3), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[max(ctx_cols, 2), k + 1], wspace=0.03)

    ctx_axes = np.atleast_2d(left.subplots(ctx_rows, ctx_cols, squeeze=False))
    h = x.shape[-2]
    for ax in ctx_axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_axis_off()
    for i, s in enumerate(slabs):
        ax = ctx_axes.ravel()[i]
        ax.set_axis_on()
        ax.imshow(s.image, interpolation="nearest")
        px = s.image.shape[0] / h
        _draw_tokens(ax, s, (px, px))
        what = f"tail {s.tail}" if s.tail else kernel_label(s.kernel)
        note = "" if s.complete else "\nnot in the result (trimmed)"
        ax.set_title(f"{_frames_text(s.slab)}\n{what}\n{s.slab_tokens} token{'s' if s.slab_tokens != 1 else ''}{note}",
                     fontsize=7, color="black" if s.complete else "#b00020")
    if slabs:
        left.suptitle("context as the model receives it\n(time order; lines: its tokens)", fontsize=8)
    else:
        ctx_axes[0, 0].set_axis_on()
        ctx_axes[0, 0].text(0.5, 0.5, "no context:\nthis step sees\nno known frame", ha="center", va="center",
                            fontsize=8, transform=ctx_axes[0, 0].transAxes)
        left.suptitle("context as the model receives it", fontsize=8)

    noise = trace._decode(trace.noise[0])  # (S, H, W, 3): the sampler's input, decoded
    den_axes = right.subplots(S, k + 1, squeeze=False)
    for r in range(S):
        for c in range(k + 1):
            ax = den_axes[r, c]
            ax.imshow(noise[r] if c == 0 else rows[c - 1, r], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(GENERATED_COLOUR)
            if r == 0:
                i = which[c - 1] if c else 0
                head = "input noise" if c == 0 else f"x0 at step {i + 1}/{len(trace.x0)}"
                ax.set_title(f"{head}\n\u03c3 = {float(trace.sigmas[i]):.2f}", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"frame {step.generated[r]}", fontsize=7)
    right.suptitle(f"the section being generated ({_frames_text(step.generated)}):\n"
                   "the model's estimate of the clean frames (x0) at each sampler step", fontsize=8)
    missing = sorted({f for s in seen for f in s.slab if f >= x.shape[2]})
    caveat = (f"\n(red: frame {', '.join(map(str, missing))} lies past the {x.shape[2]}-frame result, which generate trimmed; "
              "packed here as zeros, not as the model saw it)") if missing else ""
    fig.suptitle(f"What the model sees at step {step.index + 1}/{len(plan.steps) if plan else '?'}"
                 f"{' of ' + plan.order if plan else ''}: the farther a context frame, the coarser its tokens;\n"
                 f"the section is denoised from that context{caveat}", fontsize=9)
    return fig
