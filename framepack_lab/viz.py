"""Figures: context length curves, packing diagrams, token bars, plans, and measured results.

Every function draws into ``ax`` when one is given (else a new figure of a suitable size) and
returns the matplotlib ``Figure``. A figure of several panels takes a sequence of axes, one per
panel, or a single axes whose place it divides into its panels. Colours are shared by all
figures: a kernel's colour depends only on its compression rate (:data:`KERNEL_COLOURS`), the
generated section is dark, tails are grey and hatched::

    from framepack_lab import viz
    viz.plot_context_length(schedules=["official_vanilla"], log_y=True)
    viz.plot_packing_diagram("td_f16k4f4k2f1k1_g9")
    p = plan.make_plan("inverted_anti_drifting", 33)
    viz.plot_plan(p); viz.plot_step_tokens(p)

Imports: matplotlib and numpy, and from this package :mod:`~framepack_lab.schedule` and
:mod:`~framepack_lab.plan` (plain Python), so the figures of schedules and plans are instant and
need no torch. The figures of measured things import what they measure when called:
:func:`plot_drift` imports :mod:`~framepack_lab.metrics` and :func:`plot_rope_alignment`
imports :mod:`~framepack_lab.rope` (both need torch); :func:`plot_table1` reads a pandas
DataFrame. Besides this module only the panels (:mod:`~framepack_lab.widgets`) and the
``--plot`` option of :mod:`~framepack_lab.evaluate` import matplotlib; the core never does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Iterator

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from . import plan as _plan
from . import schedule as _schedule
from .schedule import BASE, Kernel, Schedule

__all__ = [
    "KERNEL_COLOURS",
    "GENERATED_COLOUR",
    "TAIL_COLOUR",
    "KNOWN_COLOUR",
    "kernel_colour",
    "kernel_label",
    "plot_context_length",
    "plot_packing_diagram",
    "plot_step_tokens",
    "plot_plan",
    "plot_drift",
    "plot_table1",
    "plot_rope_alignment",
    "plot_section_costs",
]

GENERATED_COLOUR = "#262626"  # the section being generated (dark)
TAIL_COLOUR = "#9e9e9e"  # frames kept by a tail option (ta / tc), drawn hatched
KNOWN_COLOUR = "#ececec"  # known frames a step does not look at (dropped)
TAIL_HATCH = "////"
_CMAP = "plasma"
_MAX_LOG2_COMPRESSION = 9  # k8 = (8, 16, 16) is 512x; larger rates (k16 ...) share its colour
_KERNEL_RE = re.compile(r"k(\d+)(?:h(\d+)w(\d+))?")


def _as_kernel(kernel: "Kernel | str") -> Kernel:
    if isinstance(kernel, Kernel):
        return kernel
    m = _KERNEL_RE.fullmatch(str(kernel))
    if not m:
        raise ValueError(f"cannot read kernel name {kernel!r}: expected 'kN' or 'kNhHwW', e.g. 'k2' or 'k1h4w4'")
    n, h, w = m.groups()
    return Kernel.k(int(n)) if h is None else Kernel(int(n), int(h), int(w))


class _KernelColours(Mapping):
    """Kernel -> colour (hex), keyed by :class:`Kernel` or its name (``"k2"``, ``"k1h4w8"``).

    The colour depends only on the compression rate ``pf*ph*pw/4`` (log scale, the ``plasma``
    colormap): k1 (1x) violet, k2 (8x) magenta, k4 (64x) orange, k8 (512x) and beyond yellow. So
    the same kernel has the same colour in every figure, and kernels of equal rate (``k4`` and
    ``k1h16w16``, both 64x) share one. Any valid kernel can be looked up;
    iteration lists the paper's ``k1`` ... ``k16``.
    """

    _listed = ("k1", "k2", "k4", "k8", "k16")

    def __getitem__(self, kernel: "Kernel | str") -> str:
        try:
            k = _as_kernel(kernel)
        except ValueError as e:
            raise KeyError(str(e)) from None
        t = min(math.log2(k.compression), _MAX_LOG2_COMPRESSION) / _MAX_LOG2_COMPRESSION
        return to_hex(colormaps[_CMAP](0.16 + 0.76 * t))

    def __iter__(self) -> Iterator[str]:
        return iter(self._listed)

    def __len__(self) -> int:
        return len(self._listed)

    def __repr__(self) -> str:
        return "KERNEL_COLOURS(" + ", ".join(f"{k}={self[k]}" for k in self) + ", ...)"


KERNEL_COLOURS: Mapping = _KernelColours()


def kernel_colour(kernel: "Kernel | str") -> str:
    """The colour of ``kernel`` (a :class:`Kernel` or a name like ``"k4"``) in every figure."""
    return KERNEL_COLOURS[kernel]


def kernel_label(kernel: "Kernel | str") -> str:
    """Legend text for a kernel: ``"k4 (4,8,8) 64x"``."""
    k = _as_kernel(kernel)
    return f"{k.name} ({k.pf},{k.ph},{k.pw}) {k.compression}x"


# ------------------------------------------------------------------------------- helpers
def _new_ax(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def _new_axes(ax, rows: int, cols: int, figsize, what: str, **subplots_kw):
    """``(figure, axes (rows, cols))`` for a figure of several panels.

    ``ax`` is None (a new figure), a sequence of ``rows * cols`` axes (row by row), or one axes
    whose place in its figure is divided into the panels (it is replaced by them).
    """
    if ax is None:
        fig, axes = plt.subplots(rows, cols, figsize=figsize, layout="constrained", squeeze=False, **subplots_kw)
        return fig, axes
    if isinstance(ax, Axes):
        if rows * cols == 1:
            return ax.figure, np.array([[ax]])
        spec = ax.get_subplotspec()
        if spec is None:
            raise ValueError(f"{what} draws {rows}x{cols} panels and cannot divide an axes that is not on a "
                             "grid; pass ax=None, or one axes per panel")
        fig = ax.figure
        ax.remove()
        return fig, spec.subgridspec(rows, cols).subplots(squeeze=False, **subplots_kw)
    axes = np.asarray(ax, dtype=object).ravel()
    if len(axes) != rows * cols or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(f"{what} draws {rows * cols} panels ({rows} row(s) x {cols} column(s)); pass ax=None, "
                         f"one axes to divide, or {rows * cols} axes, e.g. fig.subplots({rows}, {cols})")
    return axes[0].figure, axes.reshape(rows, cols)


def _thousands(x, _pos=None) -> str:
    if x >= 1 or x == 0:
        return f"{x:,.0f}"
    return f"{x:g}"


def _kernel_handles(kernels: Iterable[Kernel]) -> list[Patch]:
    ks = sorted(set(kernels), key=lambda k: (k.compression, k.pf, k.ph, k.pw))
    return [Patch(facecolor=kernel_colour(k), edgecolor="none", label=kernel_label(k)) for k in ks]


def _frame_range(frames: Iterable[int]) -> str:
    frames = list(frames)
    if len(frames) == 1:
        return str(frames[0])
    return f"{frames[0]}\u2013{frames[-1]}"


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


# ------------------------------------------------------------------------------------ drift
ORDER_COLOURS = {
    "vanilla": "#d62728",
    "anti_drifting": "#ff7f0e",
    "inverted_anti_drifting": "#1f77b4",
    "f1": "#2ca02c",
}


def plot_drift(curves: Mapping[str, Iterable[float]], frac: float = 0.15, title: str = "", ax=None) -> Figure:
    """Per-frame metric curves with the first and last ``frac`` of frames shaded.

    Args:
        curves: ``{label: (T,) series}``, e.g. one per sampling order.
        frac: the share of frames compared by the start-end contrast (the paper's 15%).
        title: the metric's name.
        ax: axes to draw into; a new figure when None.
    """
    from .metrics import start_end_contrast

    fig, ax = _new_ax(ax, (7, 3))
    T = 0
    for label, c in curves.items():
        c = np.asarray(list(c), dtype=float)
        T = max(T, len(c))
        delta = start_end_contrast(c, frac) if len(c) >= 2 else float("nan")
        ax.plot(np.arange(len(c)), c, color=ORDER_COLOURS.get(label), label=f"{label} (Δ={delta:.3g})", lw=1.5)
    n = max(1, int(round(frac * T)))
    ax.axvspan(-0.5, n - 0.5, color="#bbbbbb", alpha=0.35, lw=0)
    ax.axvspan(T - n - 0.5, T - 0.5, color="#bbbbbb", alpha=0.35, lw=0)
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_xlabel("frame")
    ax.set_ylabel(title or "metric")
    ax.set_title(f"{title}: first and last {frac:.0%} of frames shaded" if title else "")
    ax.legend(fontsize=8, frameon=False)
    return fig


def plot_table1(summary, metrics_: Iterable[str] = ("delta_colour_drift", "delta_clarity", "dynamic_mean"),
                ax=None) -> Figure:
    """Bars of the toy Table 1: mean and standard deviation per row for a few columns.

    Args:
        summary: the summary DataFrame of :func:`framepack_lab.table1.run` (columns ``order``,
            ``schedule``, ``<metric>_mean``, ``<metric>_std``).
        metrics_: the columns to draw, one panel each.
        ax: axes to draw into (one per column, or one to divide); a new figure when None.
    """
    metrics_ = list(metrics_)
    fig, axes = _new_axes(ax, 1, len(metrics_), (4.2 * len(metrics_), 0.45 * len(summary) + 1.6),
                          "plot_table1", sharey=True)
    axes = axes[0]
    labels = [f"{o.replace('_anti_drifting', ' AD').replace('anti_drifting', 'AD')} · {s}" for o, s in
              zip(summary["order"], summary["schedule"])]
    y = np.arange(len(summary))
    colours = [ORDER_COLOURS.get(o, "#777777") for o in summary["order"]]
    for a, m in zip(axes, metrics_):
        std = summary.get(f"{m}_std")
        a.barh(y, summary[f"{m}_mean"], xerr=None if std is None else np.nan_to_num(std), color=colours,
               alpha=0.85, error_kw={"lw": 1})
        a.set_title(m.replace("delta_", "Δ "), fontsize=10)
        a.invert_yaxis()
    axes[0].set_yticks(y, labels, fontsize=7)
    return fig


def plot_rope_alignment(positions: Iterable[int], grid_hw: tuple[int, int], kernel: "Kernel | str",
                        axes_dims=(8, 12, 12), theta: float = 256.0, ax=None) -> Figure:
    """Phase grids of one compressed group under each alignment.

    Top row: cos of a y-axis channel (its second-fastest frequency) over the (y, x) token grid of
    the group's first time slice; bottom row: the same for a t-axis channel over (t, x). Columns: the base grid, then
    the kernel's tokens with average pooling (the paper's), centre-cell and first-cell alignment.

    Args:
        positions: time positions of the group's frames.
        grid_hw: base token grid ``(h, w)`` of one frame.
        kernel: the group's kernel (a :class:`~framepack_lab.schedule.Kernel` or a name).
        axes_dims, theta: the model's RoPE channels per axis (t, y, x) and base.
        ax: axes to draw into (2 x 4 of them, or one to divide); a new figure when None.
    """
    from .rope import ALIGN_MODES, phase_grid, pool_grid

    kernel = _as_kernel(kernel)
    positions = list(positions)
    cos, _ = phase_grid(positions, *grid_hw, axes_dims, theta)
    t_ch, y_ch = 2, axes_dims[0] + 2  # the second-fastest frequency of the t and of the y axis
    panels = [("base grid", cos)] + [(f"{kernel.name}, {m}", pool_grid(cos, kernel.ratio, m)) for m in ALIGN_MODES]
    own_figure = ax is None
    fig, axs = _new_axes(ax, 2, len(panels), (3 * len(panels), 5.2), "plot_rope_alignment")
    for j, (name, g) in enumerate(panels):
        g = g.numpy()
        axs[0, j].imshow(g[0, :, :, y_ch], cmap="RdBu", vmin=-1, vmax=1)
        axs[0, j].set_title(name, fontsize=9)
        axs[1, j].imshow(g[:, 0, :, t_ch], cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        for a in axs[:, j]:
            a.set_xticks([])
            a.set_yticks([])
    axs[0, 0].set_ylabel("y (cos, y channel)")
    axs[1, 0].set_ylabel("t (cos, t channel)")
    if own_figure:  # a given figure keeps its own title
        fig.suptitle(f"RoPE phases of {len(positions)} frames at times {positions[0]}..{positions[-1]}", fontsize=10)
    return fig


def plot_section_costs(costs, ax=None) -> Figure:
    """Measured per-section time, tokens and peak memory, packed vs unpacked, as history grows.

    Args:
        costs: ``{label: SectionCost}`` from :func:`framepack_lab.cost.section_costs`.
        ax: axes to draw into (three of them, or one to divide); a new figure when None.
    """
    fig, axes = _new_axes(ax, 1, 3, (14, 3.4), "plot_section_costs")
    axes = axes[0]
    colours = {"packed": "#1f77b4", "unpacked": "#d62728"}
    for label, c in costs.items():
        kw = {"color": colours.get(label), "marker": "o", "ms": 3, "label": f"{label} (last/first {c.ratio:.2f}x)"}
        axes[0].plot(c.history, c.seconds, **kw)
        axes[1].plot(c.history, c.tokens, **kw)
        axes[2].plot(c.history, c.peak_mb, **kw)
    for a, title in zip(axes, ("seconds per section", "tokens per step", "peak memory above baseline (MB)")):
        a.set_xlabel("known frames before the section")
        a.set_title(title, fontsize=10)
        a.set_ylim(bottom=0)
    axes[0].legend(fontsize=8, frameon=False)
    return fig
