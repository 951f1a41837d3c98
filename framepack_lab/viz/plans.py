"""Figures of schedules and plans: context length (Eq. 1-3), packing diagram, step tokens, plan grid.

Every function draws into ``ax`` when one is given (else a new figure of a suitable size) and
returns the matplotlib ``Figure``; :mod:`framepack_lab.viz` re-exports them, with examples.

Imports: matplotlib and numpy, the shared look (:mod:`.style`), and from this package
:mod:`~framepack_lab.schedule` and :mod:`~framepack_lab.plan` (plain Python), so these figures
are instant and need no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from .. import plan as _plan
from .. import schedule as _schedule
from ..schedule import BASE, Schedule
from .style import (GENERATED_COLOUR, KNOWN_COLOUR, TAIL_COLOUR, TAIL_HATCH, _frame_range, _kernel_handles,
                    _new_ax, _thousands, kernel_colour)


def _as_plan_schedule(spec) -> tuple[str, Schedule]:
    """A label and a schedule for a preset key, a name or a Schedule."""
    sched = _schedule.as_schedule(spec)
    label = spec if isinstance(spec, str) and spec in _schedule.PRESETS else sched.name
    return label, sched


# --------------------------------------------------------------------- context length (Eq. 1-3)
def plot_context_length(L_f: float = 1560, S: int = 1, lambdas: Iterable[float] = (1.5, 2, 3),
                        schedules: Iterable["Schedule | str"] = (), T_max: int = 64,
                        latent_hw: tuple[int, int] = (60, 104), log_y: bool = False,
                        mark_T: int | None = None, ax=None) -> Figure:
    """Context length (tokens per generation step) against the number of history frames ``T``.

    Draws:

    * the plain DiT that attends to every frame, ``L = L_f (T + S)`` (grows without bound);
    * Eq. 2 for each ``lambda`` in ``lambdas``, ``L = S L_f + L_f (1 - lambda^-T) / (1 - lambda^-1)``,
      with its Eq. 3 limit ``(S + lambda / (lambda - 1)) L_f`` as a dashed line of the same colour;
    * for each schedule in ``schedules`` (a preset key such as ``"official_vanilla"``, a schedule
      name, or a :class:`~framepack_lab.schedule.Schedule`), the real token count of each step of
      vanilla sampling at latent size ``latent_hw``, against the history that step can see: a step
      function that saturates once every block is full. It counts the schedule's own section
      (``gN``, not ``S``) and the replicate padding of every block.

    Args:
        L_f: tokens of one latent frame at the base kernel (1, 2, 2); 1560 = 480p HunyuanVideo.
        S: generated frames per section for the plain-DiT and Eq. 2 / Eq. 3 curves.
        lambdas: compression ratios ``> 1`` for Eq. 2 (the paper uses 2).
        schedules: schedules whose real token counts to draw (may be empty).
        T_max: largest number of history frames on the x axis.
        latent_hw: latent (height, width) for the schedule curves; (60, 104) gives ``L_f = 1560``.
        log_y: logarithmic token axis (shows the bounded curves and the linear one together).
        mark_T: optionally mark one ``T`` with a vertical line and the Eq. 2 values there.
        ax: axes to draw into; a new figure when None.

    Returns:
        The figure. A right-hand axis shows the same values in units of ``L_f``.
    """
    lambdas = tuple(lambdas)
    schedules = tuple(schedules)
    if not isinstance(T_max, int) or T_max < 1:
        raise ValueError(f"T_max must be a positive integer number of frames, got {T_max!r}")
    h, w = latent_hw
    fig, ax = _new_ax(ax, (8, 5.6))
    T = np.arange(0, T_max + 1)
    ax.plot(T, [_schedule.unpacked_length(L_f, int(t), S) for t in T], color="black", lw=2,
            label=f"plain DiT, no packing: $L_f(T+S)$")
    cmap = colormaps["tab10"]
    for i, lam in enumerate(lambdas):
        c = cmap((i + 1) % 10)
        ax.plot(T, [_schedule.context_length(L_f, lam, int(t), S) for t in T], color=c, lw=2,
                label=f"Eq. 2, $\\lambda$={lam:g}")
        lim = _schedule.context_length_limit(L_f, lam, S)
        dark = tuple(0.6 * v for v in to_rgb(c))  # drawn over its curve, so a darker shade
        ax.axhline(lim, color=dark, ls=(0, (4, 3)), lw=1.2, zorder=3,
                   label=f"Eq. 3 limit, $\\lambda$={lam:g}: {lim:,.0f} = {lim / L_f:.3g} $L_f$")
    for j, spec in enumerate(schedules):
        label, sched = _as_plan_schedule(spec)
        p = _plan.vanilla(T_max + 1 + sched.generated, sched)
        xs, ys, known = [], [], 1
        for step in p:
            if known > T_max:
                break
            xs.append(known)
            ys.append(step.token_count(h, w))
            known += len(step.generated)
        xs.append(T_max)
        ys.append(ys[-1])
        ax.step(xs, ys, where="post", color=cmap((len(lambdas) + 1 + j) % 10), lw=2, ls="-",
                alpha=0.9, label=f"{label} at {h}x{w} (S={sched.generated}), real tokens")
    if mark_T is not None:
        ax.axvline(mark_T, color="0.4", ls=":", lw=1)
        for i, lam in enumerate(lambdas):
            ax.plot([mark_T], [_schedule.context_length(L_f, lam, int(mark_T), S)], "o",
                    color=cmap((i + 1) % 10), ms=6)
        ax.plot([mark_T], [_schedule.unpacked_length(L_f, int(mark_T), S)], "o", color="black", ms=6)
    ax.set_xlim(0, T_max)
    if log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, None)
    ax.set_xlabel("history frames $T$")
    ax.set_ylabel("context length $L$ (tokens per step)")
    sec = ax.secondary_yaxis("right", functions=(lambda y: y / L_f, lambda y: y * L_f))
    sec.set_ylabel("in units of $L_f$")
    for axis in (ax.yaxis, sec.yaxis):
        if log_y:  # 1, 2, 5, 10, 20, 50, ... as plain numbers
            axis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
            axis.set_minor_formatter(NullFormatter())
        axis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_title(f"Context length vs history ($L_f$ = {L_f:,.0f} tokens/frame, S = {S})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return fig


# --------------------------------------------------------------------------- packing diagram
_FRAME_GAP = 0.08  # between frames of one block (units of a full frame's side)
_BLOCK_GAP = 0.35  # between blocks
_SKIP_WIDTH = 1.0  # the 'x' gap
_MIN_SLOT = 1.25  # a block's label needs this much room
_MIN_SIDE = 0.05  # frames smaller than this are still drawn this big


def plot_packing_diagram(schedule: "Schedule | str", latent_hw: tuple[int, int] = (16, 16),
                         ax=None) -> Figure:
    """A schedule drawn as a row of frames in video time (old on the left, new on the right).

    Every context frame is a square coloured by its kernel whose *area* is proportional to the
    tokens it costs at latent size ``latent_hw`` (a full-size square is one base-kernel frame,
    ``L_f`` tokens; a frame of a k2 block is 1/8 of it). Each block is outlined and labelled with
    its name and token count. The generated section ``gN`` is hatched and outlined in black; a
    skip ``x`` is a gap marked "x" (RoPE with random access: it costs no tokens); the tail option
    is written at the far (old) side. Very small frames are drawn at a minimum visible size.

    Args:
        schedule: a :class:`~framepack_lab.schedule.Schedule`, a schedule name or a preset key.
        latent_hw: latent (height, width) for the token counts.
        ax: axes to draw into; a new figure (width grows with the schedule) when None.

    Returns:
        The figure; its title is the schedule name and the total tokens of one full step.
    """
    label, sched = _as_plan_schedule(schedule)
    h, w = latent_hw
    L = BASE.tokens(1, h, w)

    # the row, in video time: ("block", Block, role) | ("gen",) | ("skip",)
    items: list[tuple] = []
    items += [("block", b, "left") for b in sched.left.far]
    if sched.left.skip:
        items.append(("skip",))
    items += [("block", b, "left") for b in sched.left.near]
    items.append(("gen",))
    items += [("block", b, "right") for b in sched.right.near]
    if sched.right.skip:
        items.append(("skip",))
    items += [("block", b, "right") for b in sched.right.far]

    # layout: x positions in units of a full frame's side
    layout = []  # (kind, x0, width, payload)
    x = 0.0
    for it in items:
        if it[0] == "skip":
            layout.append(("skip", x, _SKIP_WIDTH, None))
            x += _SKIP_WIDTH + _BLOCK_GAP
            continue
        if it[0] == "gen":
            n, tokens, side = sched.generated, BASE.tokens(sched.generated, h, w), 1.0
            kernel = BASE
        else:
            block = it[1]
            n, tokens, kernel = block.frames, block.tokens(h, w), block.kernel
            side = max(math.sqrt(tokens / n / L), _MIN_SIDE)
        content = n * side + (n - 1) * _FRAME_GAP
        width = max(content, _MIN_SLOT)
        layout.append((it[0], x, width, (it, n, tokens, side, content, kernel)))
        x += width + _BLOCK_GAP
    total_w = x - _BLOCK_GAP

    fig, ax = _new_ax(ax, (min(max(3.2 + 0.55 * total_w, 6), 18), 3.4))
    for kind, x0, width, payload in layout:
        if kind == "skip":
            ax.text(x0 + width / 2, 0, "x", ha="center", va="center", fontsize=16, color="0.35",
                    style="italic")
            ax.text(x0 + width / 2, -0.72, "skip\n(0 tokens)", ha="center", va="top", fontsize=7,
                    color="0.35")
            continue
        it, n, tokens, side, content, kernel = payload
        start = x0 + (width - content) / 2
        is_gen = kind == "gen"
        for k in range(n):
            fx = start + k * (side + _FRAME_GAP)
            ax.add_patch(Rectangle((fx, -side / 2), side, side,
                                   facecolor="white" if is_gen else kernel_colour(kernel),
                                   edgecolor=GENERATED_COLOUR if is_gen else "0.25",
                                   hatch="///" if is_gen else None, lw=1.2 if is_gen else 0.3))
        pad = 0.07
        ax.add_patch(Rectangle((start - pad, -0.5 - pad), content + 2 * pad, 1 + 2 * pad, fill=False,
                               edgecolor=GENERATED_COLOUR if is_gen else "0.55",
                               lw=2.2 if is_gen else 0.8, ls="-" if is_gen else (0, (2, 2))))
        name = f"g{n}" if is_gen else it[1].name
        what = "generated" if is_gen else kernel.name
        ax.text(x0 + width / 2, 0.62, name, ha="center", va="bottom", fontsize=8,
                fontweight="bold" if is_gen else "normal")
        ax.text(x0 + width / 2, -0.62, f"{tokens:,} tok\n{what}", ha="center", va="top", fontsize=7,
                color="0.2")

    if sched.tail:
        desc = {"td": "older frames\ndeleted", "ta": "older frames:\n+1 token each",
                "tc": "older frames:\n1 token in all"}[sched.tail]
        tx = -0.25 if sched.tail_side == "left" else total_w + 0.25
        ax.text(tx, 0, f"{sched.tail}\n{desc}", ha="right" if sched.tail_side == "left" else "left",
                va="center", fontsize=7, color="0.3",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.6", ls="--"))
    margin = 2.0 if sched.tail else 0.3
    ax.set_xlim(-margin if sched.tail and sched.tail_side == "left" else -0.3,
                total_w + (margin if sched.tail and sched.tail_side == "right" else 0.3))
    ax.set_ylim(-1.35, 1.0)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.annotate("", xy=(0.98, 0.02), xytext=(0.02, 0.02), xycoords="axes fraction",
                arrowprops=dict(arrowstyle="->", color="0.6", lw=1))
    ax.text(0.5, 0.035, "video time", transform=ax.transAxes, ha="center", va="bottom", fontsize=7,
            color="0.5")

    total = sched.token_count(h, w)
    title = label if label == sched.name else f"{label}: {sched.name}"
    flag = " (+D: discrete history)" if sched.discrete else ""
    ax.set_title(f"{title}{flag}\n{total:,} tokens per step at latent {h}x{w} = {total / L:.3g} $L_f$",
                 fontsize=10)
    handles = [Patch(facecolor="white", edgecolor=GENERATED_COLOUR, hatch="///", label="generated (k1)")]
    handles += _kernel_handles(b.kernel for b in sched.blocks)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 4),
              fontsize=7, frameon=False)
    return fig


# ------------------------------------------------------------------------------ step tokens
def plot_step_tokens(plan: "_plan.Plan", latent_hw: tuple[int, int] = (16, 16), ax=None) -> Figure:
    """Per-step stacked bars of tokens, in sampling order.

    Each bar is one step of ``plan``: the generated section at the bottom (dark), then every
    context group in time order, coloured by kernel; tail groups (``ta`` / ``tc``) are grey and
    hatched. A dashed line marks ``schedule.token_count(h, w)``, the budget with every block full
    (a kept tail can add a few tokens on top). The x tick labels are the frames each step
    generates.

    Args:
        plan: a :class:`~framepack_lab.plan.Plan` (from :func:`~framepack_lab.plan.make_plan`).
        latent_hw: latent (height, width) for the token counts.
        ax: axes to draw into; a new figure when None.

    Returns:
        The figure. ``ax.containers[0]`` holds the generated-section bars, one per step.
    """
    h, w = latent_hw
    steps = list(plan.steps)
    n = len(steps)
    fig, ax = _new_ax(ax, (min(max(4 + 0.45 * n, 6), 16), 4))
    xs = np.arange(n)
    gen = [BASE.tokens(len(s.generated), h, w) for s in steps]
    ax.bar(xs, gen, color=GENERATED_COLOUR, edgecolor="white", lw=0.5, label="generated section")
    kernels, has_tail = set(), False
    for x, step, bottom in zip(xs, steps, gen):
        for g in step.groups:
            t = g.tokens(h, w)
            if g.tail:
                has_tail = True
                ax.bar([x], [t], bottom=[bottom], color=TAIL_COLOUR, hatch=TAIL_HATCH, edgecolor="white",
                       lw=0.5, label="_nolegend_")
            else:
                kernels.add(g.kernel)
                ax.bar([x], [t], bottom=[bottom], color=kernel_colour(g.kernel), edgecolor="white", lw=0.5,
                       label="_nolegend_")
            bottom += t
    budget = plan.schedule.token_count(h, w)
    ax.axhline(budget, color="black", ls="--", lw=1)
    handles = [Patch(facecolor=GENERATED_COLOUR, label=f"generated g{plan.schedule.generated}")]
    handles += _kernel_handles(kernels)
    if has_tail:
        handles.append(Patch(facecolor=TAIL_COLOUR, hatch=TAIL_HATCH, edgecolor="white",
                             label=f"tail ({plan.schedule.tail})"))
    handles.append(plt.Line2D([], [], color="black", ls="--", label=f"all blocks full: {budget:,}"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_xticks(xs)
    ax.set_xticklabels([_frame_range(s.generated) for s in steps], rotation=90 if n > 12 else 0,
                       fontsize=8 if n <= 24 else 6)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_xlabel("step in sampling order (label: frames it generates)")
    ax.set_ylabel(f"tokens at latent {h}x{w}")
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_title(f"{plan.order}: {plan.schedule.name}, tokens per step", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# ------------------------------------------------------------------------------------ plan
def plot_plan(plan: "_plan.Plan", ax=None) -> Figure:
    """The sampling order at a glance: steps (rows, in sampling order) x frames (columns).

    In each row the frames the step generates are dark, the context frames it sees are coloured
    by their kernel (tail frames grey), known frames it does not look at are light grey, and
    frames not generated yet are blank. Frames past ``plan.n_frames`` (generated to fill the last
    section, then trimmed) lie right of a dotted line.

    Args:
        plan: a :class:`~framepack_lab.plan.Plan`.
        ax: axes to draw into; a new figure when None.

    Returns:
        The figure; ``ax.images[0]`` is the ``(steps, frames, 3)`` RGB grid.
    """
    steps = list(plan.steps)
    n, F = len(steps), plan.total_frames
    grid = np.ones((n, F, 3))
    known = {0}
    kernels, has_tail = set(), False
    for r, step in enumerate(steps):
        for f in known:
            grid[r, f] = to_rgb(KNOWN_COLOUR)
        for g in step.groups:
            if g.tail:
                has_tail = True
                c = to_rgb(TAIL_COLOUR)
            else:
                kernels.add(g.kernel)
                c = to_rgb(kernel_colour(g.kernel))
            for f in g.frames:
                grid[r, f] = c
        for f in step.generated:
            grid[r, f] = to_rgb(GENERATED_COLOUR)
        known.update(step.generated)
    fig, ax = _new_ax(ax, (min(max(3 + 0.14 * F, 6), 16), min(max(1.4 + 0.32 * n, 2.6), 12)))
    ax.imshow(grid, aspect="auto", interpolation="nearest", extent=(-0.5, F - 0.5, n - 0.5, -0.5))
    if F <= 120:
        ax.set_xticks(np.arange(-0.5, F, 1), minor=True)
        ax.grid(True, which="minor", axis="x", color="white", lw=0.6)
    if n <= 60:
        ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
        ax.grid(True, which="minor", axis="y", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=16))
    if n <= 30:
        ax.set_yticks(np.arange(n))
        ax.set_yticklabels([f"{i}: {_frame_range(s.generated)}" for i, s in enumerate(steps)],
                           fontsize=7 if n > 12 else 8)
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    trimmed = F > plan.n_frames
    if trimmed:
        ax.axvline(plan.n_frames - 0.5, color="0.3", ls=":", lw=1.2)
    ax.set_xlabel("latent frame (video time)")
    ax.set_ylabel("step: frames generated")
    ax.set_title(f"{plan.order} with {plan.schedule.name}: {plan.n_frames} frames, {n} steps", fontsize=10)
    handles = [Patch(facecolor=GENERATED_COLOUR, label="generated now")]
    handles += _kernel_handles(kernels)
    if has_tail:
        handles.append(Patch(facecolor=TAIL_COLOUR, label=f"tail ({plan.schedule.tail})"))
    handles.append(Patch(facecolor=KNOWN_COLOUR, label="known, not in context"))
    handles.append(Patch(facecolor="white", edgecolor="0.7", label="not generated yet"))
    if trimmed:
        handles.append(plt.Line2D([], [], color="0.3", ls=":", label="past n_frames (trimmed)"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig
