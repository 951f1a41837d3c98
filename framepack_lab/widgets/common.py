"""What the panels share: plan factories, images for the panels, and how bad input is shown.

* :data:`PlanFactory` ``(order, n_frames, schedule[, gap=]) -> Plan``: :func:`~framepack_lab.plan.make_plan`
  by default, or :func:`official_plan_factory` for the released HunyuanVideo layout;
* :func:`filmstrip`, :func:`filmstrip_caption`, :func:`figure_png`, :func:`png_bytes`: frames and
  figures as PNG images, and what a filmstrip samples in words; :func:`png_html`, :func:`as_html`:
  the same for a snapshot's static HTML;
* :func:`problem`, :func:`error_html`, :func:`check_seed`, ``_bounded``: a panel's input checks
  and the message it shows instead of a traceback.

Imports numpy, the plan module, and the world and the autoencoder for the tiny model's latent
size (both need torch); matplotlib and Pillow only inside the image helpers that use them. No
ipywidgets: the panels import it.
"""

from __future__ import annotations

import html
from typing import Callable

import numpy as np

from .. import world
from ..models.autoencoder import TinyAutoencoder
from ..plan import DEFAULT_INVERTED_GAP, OFFICIAL_WINDOW, Plan, official_plan
from ..schedule import Schedule, as_schedule

# (order, n_frames, schedule) -> Plan, e.g. make_plan (the default) or a fixed official layout; the
# generate panel also passes gap= (make_plan's) when its gap box is not at the official gap
PlanFactory = Callable[..., Plan]
# latent (h, w) of the embedded tiny model's frames (world.SIZE pixels, autoencoder factor 4)
TINY_LATENT = (world.SIZE // TinyAutoencoder.factor, world.SIZE // TinyAutoencoder.factor)
SEED_RANGE = (0, 2**63 - 1)  # generation seeds: the non-negative int64 values torch.Generator takes as is


def official_plan_factory(order: str, n_frames: int, schedule: "Schedule | str | None" = None,
                          gap: "str | int" = DEFAULT_INVERTED_GAP) -> Plan:
    """A :data:`PlanFactory` for the released HunyuanVideo checkpoints: their fixed layout
    (:func:`~framepack_lab.plan.official_plan`) for ``n_frames = 1 + k * OFFICIAL_WINDOW``.

    ``schedule`` must be None (an empty box) or the layout's own schedule; a frame count that is
    not ``1 + k * OFFICIAL_WINDOW`` is refused with the nearest ones that are, and so is any gap
    but the official one (the released checkpoints were trained with it).
    """
    if gap != DEFAULT_INVERTED_GAP:
        raise ValueError(f"the official layout has the official loop's RoPE gap, got gap={gap!r}; set the gap "
                         f"box back to {DEFAULT_INVERTED_GAP!r}")
    W = OFFICIAL_WINDOW
    sections, rest = divmod(int(n_frames) - 1, W)
    if rest or sections < 1:
        lower, upper = 1 + max(sections, 1) * W, 1 + (sections + 1) * W
        nearest = f"{lower}" if lower == upper else f"{lower} or {upper}"
        raise ValueError(f"the official layout makes 1 + k*{W} latent frames (k sections of {W}), got {n_frames}; "
                         f"use {nearest}")
    plan = official_plan(order, sections)
    if schedule is not None and as_schedule(schedule) != plan.schedule:
        raise ValueError(f"the official {order} layout has the fixed schedule {plan.schedule.name!r}, got "
                         f"{str(schedule)!r}; leave the schedule empty")
    return plan


FILMSTRIP_EVERY = 4  # a filmstrip shows every 4th frame ...
FILMSTRIP_COLUMNS = 8  # ... 8 to a row


def filmstrip(frames: np.ndarray, every: int = FILMSTRIP_EVERY, columns: int = FILMSTRIP_COLUMNS) -> np.ndarray:
    """Tile every ``every``-th frame of ``(T, H, W, 3)`` into a grid image ``(rows*H, columns*W, 3)``."""
    picked = np.asarray(frames)[::every]
    n, H, W, _ = picked.shape
    rows = -(-n // columns)
    canvas = np.ones((rows * H, min(n, columns) * W, 3), dtype=np.float32)
    for i, f in enumerate(picked):
        r, c = divmod(i, columns)
        canvas[r * H:(r + 1) * H, c * W:(c + 1) * W] = f
    return canvas


def filmstrip_caption(n_frames: int, every: int = FILMSTRIP_EVERY, columns: int = FILMSTRIP_COLUMNS,
                      what: str = "frame") -> str:
    """What a :func:`filmstrip` of ``n_frames`` frames samples, in words, e.g.
    ``"every 4th frame of 64 (frames 0, 4, ..., 60), left to right, top to bottom, 8 per row"``."""
    picked = list(range(0, n_frames, every))
    nth = {1: "every", 2: "every 2nd", 3: "every 3rd"}.get(every, f"every {every}th")
    shown = ", ".join(map(str, picked)) if len(picked) <= 4 else f"{picked[0]}, {picked[1]}, ..., {picked[-1]}"
    rows = -(-len(picked) // columns)
    layout = "left to right" + (f", top to bottom, {columns} per row" if rows > 1 else "")
    return f"{nth} {what} of {n_frames} ({what}s {shown}), {layout}"


def figure_png(fig) -> bytes:
    """PNG bytes of a matplotlib figure (the figure is closed)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


PNG_COMPRESS_LEVEL = 1  # zlib level of the panels' PNGs: 1 encodes a filmstrip ~3x faster than 6, ~40% larger


def png_bytes(image: np.ndarray, scale: int = 2) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` float image in [0, 1], upscaled by ``scale`` (nearest)."""
    import io

    from PIL import Image

    img = np.repeat(np.repeat(np.clip(image, 0, 1), scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray((img * 255).round().astype(np.uint8)).save(buf, format="png", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def png_html(png: bytes, alt: str = "") -> str:
    """An ``<img>`` tag holding ``png`` inline (base64), for snapshots."""
    import base64

    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'/>"


def as_html(obj) -> str:
    """HTML for anything a panel shows under its result, for snapshots: a matplotlib figure (as a
    PNG, the figure is closed), an object with ``_repr_html_`` (pandas tables and stylers, IPython
    ``HTML``), an image object with ``_repr_png_``, else its escaped ``repr`` (as a notebook shows it)."""
    from matplotlib.figure import Figure

    if isinstance(obj, Figure):
        return png_html(figure_png(obj))
    for name in ("_repr_html_", "_repr_png_"):
        method = getattr(obj, name, None)
        out = method() if callable(method) else None
        if out is not None:
            return out if name == "_repr_html_" else png_html(out)
    return f"<pre>{html.escape(repr(obj))}</pre>"


def device_text(backend) -> str:
    """Which device ``backend`` runs on, for a panel's status line and snapshot
    (:func:`~framepack_lab.runtime.describe_device`); a backend that names none says so."""
    from ..runtime import describe_device

    try:
        return describe_device(backend)
    except ValueError:
        return f"an unnamed device ({type(backend).__name__} has no .device)"


# ------------------------------------------------------------------------------ bad input
def problem(e: BaseException) -> str:
    """What a panel says about an exception: a ``ValueError``'s (or ``FileNotFoundError``'s) own
    message, which says what to do; anything else is a bug, named as one."""
    if isinstance(e, (ValueError, FileNotFoundError)):
        return str(e)
    return (f"unexpected {type(e).__name__}: {e} (a bug in framepack-lab, not in your input; please report "
            "it with the values that caused it)")


def error_html(message: str) -> str:
    """``message`` as a red ``error: ...`` line of HTML (escaped, wrapped)."""
    return (f"<span style='color:#b00020; white-space:pre-wrap'>error: {html.escape(message)}</span>")


def check_seed(seed) -> int:
    """A generation seed as an int in :data:`SEED_RANGE`, or a ``ValueError`` saying what to type."""
    lo, hi = SEED_RANGE
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not lo <= seed <= hi:
        raise ValueError(f"seed must be a whole number from {lo} to {hi:,} (2**63 - 1), got {seed!r}; e.g. 0")
    return int(seed)


def _bounded(widget_cls, name: str, value, lo, hi, **kw):
    """A slider (or bounded box) of range ``[lo, hi]`` starting at ``value``; ``ValueError`` for a
    start value outside it (ipywidgets would silently clamp it)."""
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value!r} is outside the panel's range {lo}..{hi}; pass a value in it")
    return widget_cls(value=value, min=lo, max=hi, **kw)


def _snapshot_html(text: str, images: list[bytes]) -> str:
    imgs = "".join(f"{png_html(b)}<br/>" for b in images if b)
    return f"<p>{text}</p>{imgs}"


class ClickRunner:
    """The Run-button behaviour panels share: a click runs :meth:`run` on a worker thread (or
    inline when ``self.background`` is False), ignores clicks while a run is going, and shows any
    error in the panel (``self._show_error``) instead of a traceback. Panels set ``self._thread``
    to None and define ``run``, ``background`` and ``_show_error``."""

    def _clicked(self) -> None:
        import threading

        if self._thread is not None and self._thread.is_alive():
            return
        if self.background:
            self._thread = threading.Thread(target=self._run_from_click, daemon=True)
            self._thread.start()
        else:
            self._run_from_click()

    def _run_from_click(self) -> None:
        """:meth:`run` for a click: whatever goes wrong shows in the panel, never as a traceback."""
        try:
            self.run()
        except Exception as e:  # noqa: BLE001 - shown in the panel, never a traceback in the cell
            self._show_error(problem(e))
