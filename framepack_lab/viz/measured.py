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
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..schedule import Kernel, as_kernel
from .style import _new_ax, _new_axes, _thousands

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

    fig, ax = _new_ax(ax, (9, 3))
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
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))  # tiny values: 1e-3 x ... not 0.0001 0.0002
    ax.set_title(f"{title} per frame: Δ compares the shaded first and last {frac:.0%}" if title else "")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside, never over, the curves
    return fig


def plot_table1(summary, metrics_: Iterable[str] = ("delta_colour_drift", "delta_clarity", "dynamic_mean"),
                error: str = "ci95", ax=None) -> Figure:
    """Bars of the toy Table 1: the mean per row, with error bars, for a few columns.

    Args:
        summary: the summary DataFrame of :func:`framepack_lab.table1.run` (columns ``order``,
            ``schedule``, ``<metric>_mean``, ``<metric>_std`` and, for ``error="ci95"``, ``n``).
        metrics_: the columns to draw, one panel each.
        error: what the error bars show: ``"ci95"`` (the 95% confidence interval of the mean,
            Student t over the ``n`` worlds of the row), ``"sd"`` (the standard deviation over
            worlds) or ``"none"``. The figure's title says which and over how many worlds.
        ax: axes to draw into (one per column, or one to divide); a new figure when None.
    """
    from ..table2 import t_quantile

    if error not in ("ci95", "sd", "none"):
        raise ValueError(f"error must be 'ci95', 'sd' or 'none', got {error!r}")
    if error == "ci95" and "n" not in summary:
        raise ValueError("error='ci95' needs the worlds per row in a column 'n' (table1.summarize gives it); "
                         "pass error='sd' for the standard deviation instead")
    metrics_ = list(metrics_)
    own_figure = ax is None
    fig, axes = _new_axes(ax, 1, len(metrics_), (4.2 * len(metrics_), 0.45 * len(summary) + 1.9),
                          "plot_table1", sharey=True)
    axes = axes[0]
    labels = [f"{o.replace('_anti_drifting', ' AD').replace('anti_drifting', 'AD')} · {s}" for o, s in
              zip(summary["order"], summary["schedule"])]
    y = np.arange(len(summary))
    colours = [ORDER_COLOURS.get(o, "#777777") for o in summary["order"]]
    for a, m in zip(axes, metrics_):
        std = summary.get(f"{m}_std")
        if error == "none" or std is None:
            err = None
        elif error == "sd":
            err = np.nan_to_num(np.asarray(std, dtype=float))
        else:
            n = np.asarray(summary["n"], dtype=float)
            err = np.nan_to_num(np.asarray(std, dtype=float) * [t_quantile(int(k)) for k in n] / np.sqrt(n))
        a.barh(y, summary[f"{m}_mean"], xerr=err, color=colours, alpha=0.85, error_kw={"lw": 1, "capsize": 2})
        a.set_title(m.replace("delta_", "Δ ").replace("_mean", " (mean level)"), fontsize=10)
        a.xaxis.set_major_locator(MaxNLocator(4))
        a.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        a.invert_yaxis()
    axes[0].set_yticks(y, labels, fontsize=7)
    if own_figure and error != "none":
        n = summary["n"] if "n" in summary else None
        worlds = "" if n is None else (f" over {int(n.min())} worlds" if n.min() == n.max()
                                       else f" over {int(n.min())}-{int(n.max())} worlds")
        what = "95% confidence interval of the mean" if error == "ci95" else "standard deviation"
        fig.suptitle(f"Toy Table 1: bars are means, whiskers the {what}{worlds}; lower Δ = less drift", fontsize=10)
    return fig


def plot_rope_alignment(positions: Iterable[int], grid_hw: tuple[int, int], kernel: "Kernel | str",
                        axes_dims=(8, 12, 12), theta: float = 256.0, ax=None) -> Figure:
    """Phase grids of one compressed group under each alignment.

    Top row: cos of a y-axis channel (its second-fastest frequency) over the (y, x) token grid of
    the group's first time slice; bottom row: the same for a t-axis channel over (t, x). Columns: the base grid, then
    the kernel's tokens with average pooling (the paper's), centre-cell and first-cell alignment.
    Axes count tokens of the panel's own grid (base tokens in the first column, the kernel's
    tokens in the others); one colourbar gives the value, cos of the phase (-1..1).

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
    fig, axs = _new_axes(ax, 2, len(panels), (3 * len(panels) + 0.8, 5.6), "plot_rope_alignment")
    rt, rh, rw = kernel.ratio
    for j, (name, g) in enumerate(panels):
        g = g.numpy()
        unit = "base tokens" if j == 0 else f"{kernel.name} tokens"
        tunit = "frames" if j == 0 else f"{kernel.name} tokens ({rt} frames)"
        im = axs[0, j].imshow(g[0, :, :, y_ch], cmap="RdBu", vmin=-1, vmax=1)
        axs[0, j].set_title(name, fontsize=9)
        axs[0, j].set_xlabel(f"x ({unit})", fontsize=8)
        axs[0, j].set_ylabel(f"y ({unit})", fontsize=8)
        axs[1, j].imshow(g[:, 0, :, t_ch], cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        axs[1, j].set_xlabel(f"x ({unit})", fontsize=8)
        axs[1, j].set_ylabel(f"t ({tunit})", fontsize=8)
        for a in axs[:, j]:
            a.xaxis.set_major_locator(MaxNLocator(4, integer=True))
            a.yaxis.set_major_locator(MaxNLocator(4, integer=True))
            a.tick_params(labelsize=7)
    axs[0, 0].set_ylabel(f"y ({'base tokens'})\ny-axis channel", fontsize=8)
    axs[1, 0].set_ylabel("t (frames)\nt-axis channel", fontsize=8)
    fig.colorbar(im, ax=list(axs.ravel()), shrink=0.8, label="cos(phase)")
    if own_figure:  # a given figure keeps its own title
        fig.suptitle(f"RoPE phases of {len(positions)} frames at times {positions[0]}..{positions[-1]}: "
                     f"average pooling blurs each {kernel.name} window to its mean, centre/first pick one cell",
                     fontsize=10)
    return fig


SECTION_COST_COLOURS = {"packed": "#1f77b4", "unpacked": "#d62728"}


def plot_section_costs(costs, fit=None, memory: bool = False, ax=None) -> Figure:
    """Measured per-section time, packed vs unpacked: against history (left) and against tokens (right).

    Left: each section's median seconds as the history grows, a band from the fastest to the
    slowest repeat. Right: the same seconds against the step's tokens, with the fitted cost
    ``a + b n + c n^2`` (:func:`framepack_lab.cost.fit_cost`): where the points follow the curve, time
    is set by tokens, and Eq. 3 (packed tokens bounded) becomes a bounded time.

    Args:
        costs: ``{label: SectionCost}`` from :func:`framepack_lab.cost.section_costs`.
        fit: a :class:`~framepack_lab.cost.CostFit` to draw; by default fitted to ``costs`` (when
            there are at least 3 token counts), else none.
        memory: add a third panel, resident memory above the pre-section level (MB). Off by
            default: for the tiny model on a CPU it is below what sampling resolves.
        ax: axes to draw into (2, or 3 with ``memory``; or one to divide); a new figure when None.
    """
    from ..cost import fit_cost

    n_panels = 3 if memory else 2
    fig, axes = _new_axes(ax, 1, n_panels, (5.5 * n_panels, 3.8), "plot_section_costs")
    axes = axes[0]
    if fit is None and len({n for c in costs.values() for n in c.tokens}) >= 3:
        fit = fit_cost(costs)
    for label, c in costs.items():
        colour = SECTION_COST_COLOURS.get(label)
        ms = np.asarray(c.seconds) * 1e3
        lo, hi = (np.asarray(v) * 1e3 for v in c.spread)
        axes[0].plot(c.history, ms, color=colour, marker="o", ms=3,
                     label=f"{label}: last/first section {c.ratio:.2f}x")
        axes[0].fill_between(c.history, lo, hi, color=colour, alpha=0.2, lw=0)
        axes[1].plot(c.tokens, ms, ls="none", color=colour, marker="o", ms=4, label=label)
        if memory:
            axes[2].plot(c.history, c.peak_mb, color=colour, marker="o", ms=3, label=label)
    if fit is not None:
        n = np.linspace(0, max(max(c.tokens) for c in costs.values()) * 1.05, 100)
        axes[1].plot(n, fit(n) * 1e3, color="#444444", lw=1, ls="--",
                     label=f"fit: {fit.a * 1e3:.0f} ms + {fit.b * 1e6:.1f} ms/1k tokens" + (" + quadratic" if fit.c else ""))
    axes[0].set_xlabel("known frames before the section")
    axes[0].set_ylabel("ms per section (median)")
    axes[0].set_title("time per section as the video grows\n(band: fastest to slowest repeat)", fontsize=10)
    axes[1].set_xlabel("tokens per step (context + section)")
    axes[1].set_ylabel("ms per section (median)")
    axes[1].set_title("time against tokens: packed tokens are bounded (Eq. 3),\nunpacked grow with the history",
                      fontsize=10)
    axes[1].xaxis.set_major_formatter(FuncFormatter(_thousands))
    if memory:
        axes[2].set_xlabel("known frames before the section")
        axes[2].set_ylabel("MB")
        axes[2].set_title("resident memory above the pre-section level\n(sampled every 2 ms)", fontsize=10)
    for a in axes:
        a.set_ylim(bottom=0)
        a.legend(fontsize=8, frameon=False, loc="upper left")
    return fig

