"""The Generate / Stop panel: pick a world, an order, a schedule and a seed, and watch a video grow.

Each finished section updates a progress bar, a status line (section, seconds, device) and a live
filmstrip (:class:`~.live.LiveFilmstrip`: only the frames the strip shows are decoded, each once,
so the panel costs about what ``generate`` alone does; ``benchmarks/panel_overhead.py`` measures
it); Stop ends the run between sections. The finished run's status line says which device ran it
and its wall time, and :meth:`GeneratePanel.snapshot` keeps everything the panel showed. In
JupyterLab a click runs generation on a worker thread; headless runs call
:meth:`GeneratePanel.run`, which blocks. Imports ipywidgets when a panel is made; matplotlib,
Pillow, mediapy and IPython when it draws or shows a video.
"""

from __future__ import annotations

import html
import math
import threading
import time
from typing import Callable

import numpy as np

from .. import world
from ..generate import DEFAULT_ORDER, GenerationResult, SectionEvent, generate
from ..plan import DEFAULT_INVERTED_GAP, ORDERS, Plan, check_gap, make_plan
from .common import (ClickRunner, PlanFactory, _bounded, as_html, check_seed, device_text, error_html, figure_png, filmstrip,
                     filmstrip_caption, png_bytes, png_html, problem)
from .live import LiveFilmstrip


class GeneratePanel(ClickRunner):
    """A Generate / Stop panel for any backend.

    Args:
        backend: e.g. ``load_tiny()``.
        world_seed: held-out world whose first frame starts the video (``first_frame`` overrides).
        first_frame: optional ``(H, W, 3)`` image; when given, the world seed box is ignored.
        on_result: called with the :class:`GenerationResult` after each finished run; whatever it
            returns (a matplotlib figure, a DataFrame, a list of them) is shown under the video.
        background: run clicks on a worker thread (True in JupyterLab; tests pass False).
        prepare: called with the first frame ``(H, W, 3)`` before each run; returns extra keyword
            arguments for :func:`~framepack_lab.generate.generate` (e.g. HunyuanVideo's
            ``{"cond": backend.condition(prompt, first)}``). Its ``ValueError`` shows in the panel.
        fps: playback rate of the finished video.
        plan_factory: builds the plan from the widgets, ``(order, n_frames, schedule) -> Plan``
            (the schedule box's text, None when empty); :func:`~framepack_lab.plan.make_plan` by
            default; :func:`official_plan_factory` for the released HunyuanVideo layout. A
            ``ValueError`` it raises (an order or frame count it cannot build) shows in the panel.
            When the gap box holds anything but the official gap, it is also called with
            ``gap=`` (inverted order only).
        gap: the inverted order's RoPE gap (:func:`~framepack_lab.plan.inverted_padding`): one
            of :attr:`GAPS`; the box is greyed out for the other orders.

    Bad input (a schedule that does not parse, a kernel or tail the backend cannot run, a frame
    count the plan factory refuses, a seed out of range) shows its message in the status line
    and in ``self.error``; nothing is generated, and the next click works with the fixed input.
    """

    N_FRAMES_RANGE = (5, 160)
    GAPS = (DEFAULT_INVERTED_GAP, 2, 4, 6, 8, 10, "true")  # the gap box's choices, official first
    STEPS_RANGE = (1, 50)
    STRIP_SCALE = 2  # the filmstrip's frames are drawn at 2x (nearest)
    LIVE_REDRAW_S = 0.25  # the live filmstrip is redrawn at most this often (and after the last section)

    def __init__(self, backend, world_seed: int = world.HELDOUT_SEEDS.start, order: str = DEFAULT_ORDER,
                 n_frames: int = 64, steps: int = 20, seed: int = 0, schedule: str = "",
                 first_frame: np.ndarray | None = None,
                 on_result: Callable[[GenerationResult], None] | None = None, background: bool = True,
                 prepare: Callable[[np.ndarray], dict] | None = None, fps: int = 12,
                 plan_factory: PlanFactory = make_plan, gap: "str | int" = DEFAULT_INVERTED_GAP):
        import ipywidgets as w

        if order not in ORDERS:
            raise ValueError(f"unknown sampling order {order!r}; choose one of {', '.join(ORDERS)}")
        if check_gap(gap) not in self.GAPS:
            raise ValueError(f"the panel's gap box offers {', '.join(map(str, self.GAPS))}, got {gap!r}; for "
                             "another gap pass plan=make_plan('inverted_anti_drifting', n, gap=...) to generate")
        self.backend, self.first_frame, self.on_result, self.background = backend, first_frame, on_result, background
        self.prepare, self.fps, self.plan_factory = prepare, fps, plan_factory
        self.world_seed = _bounded(w.BoundedIntText, "world_seed", world_seed, 0, 2**31 - 1, description="world")
        self.order = w.Dropdown(options=list(ORDERS), value=order, description="order")
        self.schedule = w.Text(value=schedule, placeholder="default for the order", description="schedule")
        self.gap = w.Dropdown(options=[(str(g), g) for g in self.GAPS], value=gap, description="RoPE gap")
        self.gap.disabled = self._gap() is None
        self.order.observe(lambda _: setattr(self.gap, "disabled", self._gap() is None), names="value")
        self.n_frames = _bounded(w.IntSlider, "n_frames", n_frames, *self.N_FRAMES_RANGE, step=1,
                                 description="frames")
        self.steps = _bounded(w.IntSlider, "steps", steps, *self.STEPS_RANGE, description="steps")
        self.seed = w.IntText(value=check_seed(seed), description="seed")
        self.generate_button = w.Button(description="Generate", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, description="sections")
        self.status = w.HTML(value="")
        # object_fit keeps the aspect ratio when the row is narrower than the images
        self.strip = w.Image(format="png", layout=w.Layout(object_fit="contain", max_width="60%"))
        self.budget = w.Image(format="png", layout=w.Layout(object_fit="contain", max_width="40%"))
        # a Label, not HTML: the status line stays the panel's one HTML widget (the e2e test finds it so)
        self.strip_caption = w.Label(value="", style={"font_size": "11px"})
        self.output = w.Output()
        self.result: GenerationResult | None = None
        self._device, self._live, self._last_redraw = "", None, -math.inf
        self._budget_key = None
        self._video_html, self._extras_html = "", []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.generate_button.on_click(lambda _: self._clicked())
        self.stop_button.on_click(lambda _: self._stop.set())
        self.widget = w.VBox([
            w.HBox([self.world_seed, self.order, self.schedule]),
            w.HBox([self.n_frames, self.steps, self.seed, self.gap]),
            w.HBox([self.generate_button, self.stop_button, self.progress, self.status]),
            w.HBox([self.budget, w.VBox([self.strip, self.strip_caption])]), self.output,
        ])

    def snapshot(self):
        """A static copy of the last run for saved or headless notebooks, where widget state is not
        stored: the status line (device and wall time included), the token budget, the filmstrip
        with a caption saying which frames it samples, the video, and whatever ``on_result``
        returned (the tables and curves shown under the video)."""
        from IPython.display import HTML

        if self.result is None:
            return HTML(f"<p>{html.escape(self.error or 'nothing generated yet')}</p>")
        return HTML(
            f"<p><b>last run</b>: {self.status.value}</p>"
            "<div style='display:flex; gap:1em; align-items:flex-start; flex-wrap:wrap'>"
            f"{png_html(self.budget.value, 'tokens per section')}"
            f"<figure style='margin:0'>{png_html(self.strip.value, 'filmstrip')}"
            f"<figcaption><small>{html.escape(self.strip_caption.value)}</small></figcaption></figure></div>"
            f"{self._video_html}{''.join(self._extras_html)}")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # ------------------------------------------------------------------------- actions
    def _show_error(self, message: str) -> None:
        self.error = message
        self.status.value = error_html(message)

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background run has finished."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _first(self) -> np.ndarray:
        if self.first_frame is not None:
            return np.asarray(self.first_frame)
        trail = getattr(self.backend, "trail", None)  # a checkpoint trained on trail worlds is shown them
        return world.video(int(self.world_seed.value), 1, trail=trail)[0]

    def _on_section(self, event: SectionEvent) -> None:
        """After each section: progress, status, and (at most every :attr:`LIVE_REDRAW_S`, and
        after the last section) the live filmstrip, decoding only the new frames it samples."""
        self.progress.value = event.index + 1
        lo, hi = event.step.generated[0], event.step.generated[-1]
        self.status.value = (f"section {event.index + 1}/{event.n_steps}: frames {lo}-{hi} "
                             f"in {event.seconds:.2f} s on {self._device}")
        now = time.perf_counter()
        if event.index + 1 < event.n_steps and now - self._last_redraw < self.LIVE_REDRAW_S:
            return
        self._last_redraw = now
        if self._live.update(event.latents, event.known):
            self.strip.value = png_bytes(self._live.image(), scale=self.STRIP_SCALE)

    def _plan(self) -> Plan:
        """The plan of the current widget values, checked against the backend (``ValueError``)."""
        schedule = self.schedule.value.strip() or None
        gap = self._gap()
        gap = {} if gap in (None, DEFAULT_INVERTED_GAP) else {"gap": gap}
        plan = self.plan_factory(self.order.value, int(self.n_frames.value), schedule, **gap)
        if not isinstance(plan, Plan):
            raise ValueError(f"the panel's plan_factory returned {type(plan).__name__}, not a Plan; it must "
                             "return framepack_lab.plan.Plan (e.g. make_plan(order, n_frames, schedule))")
        self.backend.check_plan(plan)  # a kernel or tail the backend lacks: refused before drawing
        return plan

    def _gap(self) -> "str | int | None":
        """The gap box's value for the inverted order; None for the orders that have no gap."""
        return self.gap.value if self.order.value == "inverted_anti_drifting" else None

    def _draw_budget(self, plan) -> None:
        """The plan's tokens per section; drawn again only when the plan or the frame size changes."""
        h, w = self.backend.latent_size(*self._first().shape[:2])
        if self._budget_key == (plan, h, w):
            return
        import matplotlib.pyplot as plt

        from ..viz import plot_step_tokens

        fig, ax = plt.subplots(figsize=(4.5, 2.6))
        plot_step_tokens(plan, latent_hw=(h, w), ax=ax)
        ax.set_title(f"tokens per section ({len(plan.steps)} sections)", fontsize=9)
        self.budget.value = figure_png(fig)
        self._budget_key = (plan, h, w)

    def _append(self, obj) -> None:
        """Show ``obj`` (a matplotlib figure, anything IPython can display, or a list of them)
        in the output area, and keep its HTML for :meth:`snapshot`; safe from a worker thread."""
        from matplotlib.figure import Figure

        for item in obj if isinstance(obj, (list, tuple)) else [obj]:
            if isinstance(item, Figure):
                from IPython.display import Image

                png = figure_png(item)
                self._extras_html.append(png_html(png))
                item = Image(png)
            else:
                self._extras_html.append(as_html(item))
            self.output.append_display_data(item)

    def run(self) -> GenerationResult | None:
        """Generate with the current widget values (blocking); returns the result, or None on
        bad input (the error is shown in the panel and kept in ``self.error``). Other exceptions
        are bugs and propagate here; from a click they show in the panel too."""
        from ..media import show_video

        self._stop.clear()
        self.result, self.error = None, None
        self._video_html, self._extras_html = "", []
        self.generate_button.disabled, self.stop_button.disabled = True, False
        try:
            seed = check_seed(self.seed.value)
            plan = self._plan()
            self.progress.max, self.progress.value = len(plan.steps), 0
            self._draw_budget(plan)
            self.status.value = f"{len(plan.steps)} sections of {plan.schedule.generated} frames: {plan.schedule.name}"
            first = self._first()
            extra = self.prepare(first) if self.prepare is not None else {}
            self._device = device_text(self.backend)
            self._live = LiveFilmstrip(self.backend.decode, plan.n_frames)
            self._last_redraw = -math.inf
            self.strip.value, self.strip_caption.value = b"", f"live: {self._live.caption}"
            t0 = time.perf_counter()
            result = generate(self.backend, first, plan=plan, steps=int(self.steps.value),
                              seed=seed, callback=self._on_section, stop=self._stop.is_set, **extra)
            wall = time.perf_counter() - t0
        except (ValueError, FileNotFoundError) as e:
            self._show_error(problem(e))
            return None
        finally:
            self.generate_button.disabled, self.stop_button.disabled = False, True
        self.result = result
        word = "stopped after" if result.stopped else "done:"
        gap = self._gap()
        gap = "" if gap is None else f", RoPE gap {gap}"
        self.status.value = (f"{word} {len(result.section_seconds)}/{len(plan.steps)} sections in {wall:.2f} s "
                             f"on {self._device} ({plan.order}, {plan.schedule.name}{gap})")
        self.strip.value = png_bytes(filmstrip(result.frames), scale=self.STRIP_SCALE)
        self.strip_caption.value = filmstrip_caption(len(result.frames))
        from IPython.display import HTML

        # not Output.clear_output(): from the worker thread its clear message does not reach the
        # browser (the e2e test saw the previous video stay above the new one); the synced trait does
        self.output.outputs = ()
        self._video_html = show_video(result.frames, fps=self.fps, height=192, return_html=True)
        self.output.append_display_data(HTML(self._video_html))
        if self.on_result is not None:
            extra = self.on_result(result)
            if extra is not None:
                self._append(extra)
        return result
