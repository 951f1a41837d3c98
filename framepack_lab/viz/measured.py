"""Figures of measured things: drift curves, Table 1 bars, RoPE alignment, section cost.

Every function draws into ``ax`` when one is given (else a new figure of a suitable size) and
returns the matplotlib ``Figure``; a figure of several panels takes a sequence of axes, one per
panel, or a single axes whose place it divides into its panels.

Imports: numpy, and matplotlib through the shared look (:mod:`.style`). What a figure measures
is imported when it is called: :func:`plot_drift` imports :mod:`~framepack_lab.metrics` and
:func:`plot_rope_alignment` imports :mod:`~framepack_lab.rope` (both need torch);
:func:`plot_table1` reads a pandas DataFrame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from matplotlib.figure import Figure

from ..schedule import Kernel, as_kernel
from .style import _new_ax, _new_axes

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
    from ..metrics import start_end_contrast

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
        kernel: the group's kernel (a :class:`~framepack_lab.kernel.Kernel` or a name).
        axes_dims, theta: the model's RoPE channels per axis (t, y, x) and base.
        ax: axes to draw into (2 x 4 of them, or one to divide); a new figure when None.
    """
    from ..rope import ALIGN_MODES, phase_grid, pool_grid

    kernel = as_kernel(kernel)
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
