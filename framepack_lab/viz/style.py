"""The look every figure shares: kernel colours and legend labels, and the axes helpers.

A kernel's colour depends only on its compression rate (:data:`KERNEL_COLOURS`); the generated
section is dark, tails are grey and hatched, known frames a step does not look at light grey.
``_new_ax`` and ``_new_axes`` give the figures of :mod:`.plans` and :mod:`.measured` their axes:
the one given, or a new figure of a suitable size.

Imports: matplotlib and numpy; kernel names are read by :func:`framepack_lab.schedule.as_kernel`
(plain Python).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Iterator

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.patches import Patch

from ..schedule import Kernel, as_kernel

GENERATED_COLOUR = "#262626"  # the section being generated (dark)
TAIL_COLOUR = "#9e9e9e"  # frames kept by a tail option (ta / tc), drawn hatched
KNOWN_COLOUR = "#ececec"  # known frames a step does not look at (dropped)
TAIL_HATCH = "////"
_CMAP = "plasma"
_MAX_LOG2_COMPRESSION = 9  # k8 = (8, 16, 16) is 512x; larger rates (k16 ...) share its colour


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
            k = as_kernel(kernel)
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
    k = as_kernel(kernel)
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
