"""ipywidgets panels that wire the library together (no logic of their own beyond wiring).

* :class:`ContextLengthPanel`: Eq. 1-3 with sliders (lambda, history T, section S, ``L_f``).
* :class:`SchedulePanel`: type a schedule name or pick a preset, an order and a video length; see
  the packing diagram, the plan and the tokens of every step. No model runs: it is instant.
* :class:`GeneratePanel`: pick a world, an order, a schedule and a seed, press **Generate**, watch
  each section land (progress bar and a live filmstrip), press **Stop** to end between sections.
  In JupyterLab a click runs generation on a worker thread so Stop can be clicked; headless runs
  (papermill) call :meth:`GeneratePanel.run` directly, which blocks until the video is done.
  Its plan comes from a plan factory: :func:`~framepack_lab.plan.make_plan` by default, or
  :func:`official_plan_factory` for the released HunyuanVideo layout.

Every input of a panel is checked by the library it feeds: bad input (a schedule that does not
parse, a plan the model cannot run, an impossible frame count) shows the library's message in
the panel (``panel.error`` keeps it) and the panel works again once the input is fixed; a
traceback never reaches the cell. Widget state is not saved in notebooks, so each panel has a
``snapshot()``: a static HTML copy of what it shows, for saved and headless notebooks.
"""

from __future__ import annotations

import html
import threading
from typing import Callable

import numpy as np

from . import world
from .generate import DEFAULT_ORDER, GenerationResult, SectionEvent, generate
from .models.autoencoder import TinyAutoencoder
from .plan import OFFICIAL_WINDOW, ORDERS, Plan, make_plan, official_plan
from .schedule import PRESETS, Schedule, as_schedule, context_length, context_length_limit, unpacked_length

# (order, n_frames, schedule) -> Plan, e.g. make_plan (the default) or a fixed official layout
PlanFactory = Callable[[str, int, "Schedule | str | None"], Plan]
# latent (h, w) of the embedded tiny model's frames (world.SIZE pixels, autoencoder factor 4)
TINY_LATENT = (world.SIZE // TinyAutoencoder.factor, world.SIZE // TinyAutoencoder.factor)
SEED_RANGE = (0, 2**63 - 1)  # generation seeds: the non-negative int64 values torch.Generator takes as is


def official_plan_factory(order: str, n_frames: int, schedule: "Schedule | str | None" = None) -> Plan:
    """A :data:`PlanFactory` for the released HunyuanVideo checkpoints: their fixed layout
    (:func:`~framepack_lab.plan.official_plan`) for ``n_frames = 1 + k * OFFICIAL_WINDOW``.

    ``schedule`` must be None (an empty box) or the layout's own schedule; a frame count that is
    not ``1 + k * OFFICIAL_WINDOW`` is refused with the nearest ones that are.
    """
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


def filmstrip(frames: np.ndarray, every: int = 4, columns: int = 8) -> np.ndarray:
    """Tile every ``every``-th frame of ``(T, H, W, 3)`` into a grid image ``(rows*H, columns*W, 3)``."""
    picked = np.asarray(frames)[::every]
    n, H, W, _ = picked.shape
    rows = -(-n // columns)
    canvas = np.ones((rows * H, min(n, columns) * W, 3), dtype=np.float32)
    for i, f in enumerate(picked):
        r, c = divmod(i, columns)
        canvas[r * H:(r + 1) * H, c * W:(c + 1) * W] = f
    return canvas


def figure_png(fig) -> bytes:
    """PNG bytes of a matplotlib figure (the figure is closed)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def png_bytes(image: np.ndarray, scale: int = 2) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` float image in [0, 1], upscaled by ``scale`` (nearest)."""
    import mediapy

    img = np.repeat(np.repeat(np.clip(image, 0, 1), scale, axis=0), scale, axis=1)
    return mediapy.compress_image((img * 255).astype(np.uint8), fmt="png")


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
    import base64

    imgs = "".join(f"<img src='data:image/png;base64,{base64.b64encode(b).decode()}'/><br/>" for b in images if b)
    return f"<p>{text}</p>{imgs}"


# --------------------------------------------------------------------------- Eq. 1-3 panel
class ContextLengthPanel:
    """Eq. 2 and Eq. 3 with sliders: the context length of a step as the history grows.

    Sliders: ``lambda`` (compression per step of importance), ``T`` (history frames), ``S``
    (frames per section), ``L_f`` (tokens per frame, i.e. the resolution) and a log-axis switch.
    The text line gives Eq. 2, the Eq. 3 limit and a plain DiT's count at those values; the figure
    is :func:`framepack_lab.viz.plot_context_length` with ``T`` marked.

    Args:
        T_max: the longest history on the x axis and the T slider.
        lam, T, S, L_f, log_y: starting values (``ValueError`` outside the sliders' ranges).

    Attributes:
        widget: the panel (display it); ``text`` (HTML) and ``figure`` (PNG image) its outputs;
        ``error``: the last message about bad input, or None.
    """

    LAMBDA_RANGE = (1.1, 4.0)
    S_RANGE = (1, 16)
    L_F_RANGE = (64, 4096)

    def __init__(self, T_max: int = 128, lam: float = 2.0, T: int = 16, S: int = 1, L_f: int = 1560,
                 log_y: bool = False):
        import ipywidgets as w

        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"T_max must be a positive whole number of history frames, got {T_max!r}")
        self.T_max = T_max
        self.lam = _bounded(w.FloatSlider, "lam", lam, *self.LAMBDA_RANGE, step=0.1, description="λ",
                            continuous_update=False)
        self.T = _bounded(w.IntSlider, "T", T, 0, T_max, description="T", continuous_update=False)
        self.S = _bounded(w.IntSlider, "S", S, *self.S_RANGE, description="S", continuous_update=False)
        self.L_f = _bounded(w.IntSlider, "L_f", L_f, *self.L_F_RANGE, step=8, description="L_f",
                            continuous_update=False)
        self.log_y = w.Checkbox(value=log_y, description="log y axis")
        self.text = w.HTML(value="")
        self.figure = w.Image(format="png", layout=w.Layout(object_fit="contain", max_width="100%"))
        self.error: str | None = None
        for slider in (self.lam, self.T, self.S, self.L_f, self.log_y):
            slider.observe(self.update, names="value")
        self.widget = w.VBox([w.HBox([self.lam, self.T]), w.HBox([self.S, self.L_f, self.log_y]),
                              self.text, self.figure])
        self.update()

    def update(self, change=None) -> bool:
        """Recompute the text and the figure from the sliders; False (and a message) on bad input."""
        from . import viz

        lam, T, S, L_f = float(self.lam.value), int(self.T.value), int(self.S.value), int(self.L_f.value)
        try:
            eq2 = context_length(L_f, lam, T, S)  # Eq. 2
            eq3 = context_length_limit(L_f, lam, S)  # Eq. 3
            plain = unpacked_length(L_f, T, S)
            png = figure_png(viz.plot_context_length(L_f=L_f, S=S, lambdas=(lam,), T_max=self.T_max,
                                                     log_y=bool(self.log_y.value), mark_T=T))
        except Exception as e:  # noqa: BLE001 - a panel shows every problem instead of dying
            self.error = problem(e)
            self.text.value, self.figure.value = error_html(self.error), b""
            return False
        self.error = None
        self.text.value = (
            f"<b>Eq. 2</b> (λ={lam:g}, T={T}, S={S}, L_f={L_f:,}): L = {eq2:,.0f} tokens = {eq2 / L_f:.3f} L_f"
            f" &nbsp;·&nbsp; <b>Eq. 3</b> limit: {eq3:,.0f} = {eq3 / L_f:.3f} L_f"
            f" &nbsp;·&nbsp; plain DiT: {plain:,.0f} ({plain / eq2:.1f}x the packed step)")
        self.figure.value = png
        return True

    def snapshot(self):
        """A static copy of what the panel shows (text and figure), for saved or headless notebooks."""
        from IPython.display import HTML

        return HTML(_snapshot_html(self.text.value, [self.figure.value]))

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# ------------------------------------------------------------------------- schedule panel
class SchedulePanel:
    """Type a schedule name or pick a preset, an order and a video length; see the schedule's
    packing diagram, the plan of that order and the tokens of every step.

    The name box takes a schedule name (``td_f16k4f4k2f2k1_g4``) or a preset key (``geometric``);
    picking a preset writes its name into the box, and typing another name sets the preset
    dropdown back to "(typed name)". Nothing here runs a model.

    Args:
        schedule: starting schedule name or preset key.
        order: starting sampling order (one of :data:`~framepack_lab.plan.ORDERS`).
        n_frames: starting video length in latent frames.
        latent_hw: latent size for the token counts (default: the tiny model's, :data:`TINY_LATENT`).
        max_frames: the longest video the frames slider offers.
        plan_factory: ``(order, n_frames, schedule) -> Plan``, :func:`~framepack_lab.plan.make_plan`
            by default; its ``ValueError`` shows in the panel.

    Attributes:
        widget: the panel; ``name``, ``preset``, ``order``, ``n_frames``: its inputs; ``message``
        (HTML), ``diagram``, ``plan_figure``, ``tokens`` (PNG images): its outputs.
        schedule, plan: what is drawn (None after bad input); ``error``: the last message or None.
    """

    TYPED = "(typed name)"

    def __init__(self, schedule: str = "temporal_kernel", order: str = "vanilla", n_frames: int = 65,
                 latent_hw: tuple[int, int] = TINY_LATENT, max_frames: int = 128,
                 plan_factory: PlanFactory = make_plan):
        import ipywidgets as w

        if order not in ORDERS:
            raise ValueError(f"unknown sampling order {order!r}; choose one of {', '.join(ORDERS)}")
        self.latent_hw, self.plan_factory = tuple(latent_hw), plan_factory
        start = PRESETS[schedule].name if schedule in PRESETS else schedule
        self.name = w.Text(value=start, description="schedule", continuous_update=False,
                           layout=w.Layout(width="560px"))
        self.preset = w.Dropdown(options=[(self.TYPED, None)] + [(k, k) for k in PRESETS],
                                 value=self._preset_key(start), description="preset")
        self.order = w.Dropdown(options=list(ORDERS), value=order, description="order")
        self.n_frames = _bounded(w.IntSlider, "n_frames", n_frames, 2, max_frames, description="frames",
                                 continuous_update=False)
        self.message = w.HTML(value="")
        full = w.Layout(object_fit="contain", max_width="100%")
        self.diagram = w.Image(format="png", layout=full)
        self.plan_figure = w.Image(format="png", layout=full)
        self.tokens = w.Image(format="png", layout=full)
        self.schedule: Schedule | None = None
        self.plan: Plan | None = None
        self.error: str | None = None
        self._syncing = False
        self.name.observe(self._name_typed, names="value")
        self.preset.observe(self._preset_picked, names="value")
        self.order.observe(self.draw, names="value")
        self.n_frames.observe(self.draw, names="value")
        self.widget = w.VBox([self.name, w.HBox([self.preset, self.order]), self.n_frames, self.message,
                              self.diagram, self.plan_figure, self.tokens])
        self.draw()

    @staticmethod
    def _preset_key(text: str) -> str | None:
        """The preset ``text`` names (its key or its schedule name), or None."""
        text = text.strip()
        if text in PRESETS:
            return text
        return next((k for k, p in PRESETS.items() if p.name == text), None)

    def _name_typed(self, change) -> None:
        key = self._preset_key(change["new"])
        if key != self.preset.value:
            self._syncing = True
            try:
                self.preset.value = key
            finally:
                self._syncing = False
        self.draw()

    def _preset_picked(self, change) -> None:
        if self._syncing or change["new"] is None:
            return
        self.name.value = PRESETS[change["new"]].name  # redraws through the name box

    def draw(self, change=None) -> bool:
        """Draw the current inputs; False (and a message in the panel) on bad input."""
        from . import viz

        h, w = self.latent_hw
        try:
            schedule = as_schedule(self.name.value)
            plan = self.plan_factory(self.order.value, int(self.n_frames.value), schedule)
            pngs = [figure_png(viz.plot_packing_diagram(schedule, latent_hw=self.latent_hw)),
                    figure_png(viz.plot_plan(plan)),
                    figure_png(viz.plot_step_tokens(plan, latent_hw=self.latent_hw))]
        except Exception as e:  # noqa: BLE001 - a panel shows every problem instead of dying
            self.schedule = self.plan = None
            self.error = problem(e)
            self.message.value = error_html(self.error)
            self.diagram.value = self.plan_figure.value = self.tokens.value = b""
            return False
        self.schedule, self.plan, self.error = schedule, plan, None
        self.message.value = (f"<code>{html.escape(schedule.name)}</code>, {plan.order}: {len(plan)} steps, "
                              f"at most {max(plan.tokens_per_step(h, w)):,} tokens per step at latent {h}x{w}")
        self.diagram.value, self.plan_figure.value, self.tokens.value = pngs
        return True

    def snapshot(self):
        """A static copy of what the panel shows (message and figures), for saved or headless notebooks."""
        from IPython.display import HTML

        return HTML(_snapshot_html(self.message.value, [self.diagram.value, self.plan_figure.value,
                                                        self.tokens.value]))

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# ------------------------------------------------------------------------- generate panel
class GeneratePanel:
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

    Bad input (a schedule that does not parse, a kernel or tail the backend cannot run, a frame
    count the plan factory refuses, a seed out of range) shows its message in the status line
    and in ``self.error``; nothing is generated, and the next click works with the fixed input.
    """

    N_FRAMES_RANGE = (5, 160)
    STEPS_RANGE = (1, 50)

    def __init__(self, backend, world_seed: int = world.HELDOUT_SEEDS.start, order: str = DEFAULT_ORDER,
                 n_frames: int = 64, steps: int = 20, seed: int = 0, schedule: str = "",
                 first_frame: np.ndarray | None = None,
                 on_result: Callable[[GenerationResult], None] | None = None, background: bool = True,
                 prepare: Callable[[np.ndarray], dict] | None = None, fps: int = 12,
                 plan_factory: PlanFactory = make_plan):
        import ipywidgets as w

        if order not in ORDERS:
            raise ValueError(f"unknown sampling order {order!r}; choose one of {', '.join(ORDERS)}")
        self.backend, self.first_frame, self.on_result, self.background = backend, first_frame, on_result, background
        self.prepare, self.fps, self.plan_factory = prepare, fps, plan_factory
        self.world_seed = _bounded(w.BoundedIntText, "world_seed", world_seed, 0, 2**31 - 1, description="world")
        self.order = w.Dropdown(options=list(ORDERS), value=order, description="order")
        self.schedule = w.Text(value=schedule, placeholder="default for the order", description="schedule")
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
        self.output = w.Output()
        self.result: GenerationResult | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.generate_button.on_click(lambda _: self._clicked())
        self.stop_button.on_click(lambda _: self._stop.set())
        self.widget = w.VBox([
            w.HBox([self.world_seed, self.order, self.schedule]),
            w.HBox([self.n_frames, self.steps, self.seed]),
            w.HBox([self.generate_button, self.stop_button, self.progress, self.status]),
            w.HBox([self.budget, self.strip]), self.output,
        ])

    def snapshot(self):
        """A static copy of the last run (status line and filmstrip) for saved or headless
        notebooks, where widget state is not stored."""
        import base64

        from IPython.display import HTML

        if self.result is None:
            return HTML(f"<p>{html.escape(self.error or 'nothing generated yet')}</p>")
        img = base64.b64encode(png_bytes(filmstrip(self.result.frames), scale=1)).decode()
        return HTML(f"<p><b>last run</b>: {self.status.value}</p><img src='data:image/png;base64,{img}'/>")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # ------------------------------------------------------------------------- actions
    def _clicked(self) -> None:
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
        except Exception as e:  # noqa: BLE001 - run() already reports bad input; this is a bug
            self._show_error(problem(e))

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
        return world.video(int(self.world_seed.value), 1)[0]

    def _on_section(self, event: SectionEvent) -> None:
        self.progress.value = event.index + 1
        self.strip.value = png_bytes(filmstrip(event.preview()), scale=2)
        lo, hi = event.step.generated[0], event.step.generated[-1]
        self.status.value = (f"section {event.index + 1}/{event.n_steps}: frames {lo}-{hi} "
                             f"in {event.seconds:.2f} s")

    def _plan(self) -> Plan:
        """The plan of the current widget values, checked against the backend (``ValueError``)."""
        schedule = self.schedule.value.strip() or None
        plan = self.plan_factory(self.order.value, int(self.n_frames.value), schedule)
        if not isinstance(plan, Plan):
            raise ValueError(f"the panel's plan_factory returned {type(plan).__name__}, not a Plan; it must "
                             "return framepack_lab.plan.Plan (e.g. make_plan(order, n_frames, schedule))")
        self.backend.check_plan(plan)  # a kernel or tail the backend lacks: refused before drawing
        return plan

    def _draw_budget(self, plan) -> None:
        import matplotlib.pyplot as plt

        from .viz import plot_step_tokens

        h, w = self.backend.latent_size(*self._first().shape[:2])
        fig, ax = plt.subplots(figsize=(4.5, 2.6))
        plot_step_tokens(plan, latent_hw=(h, w), ax=ax)
        ax.set_title(f"tokens per section ({len(plan.steps)} sections)", fontsize=9)
        self.budget.value = figure_png(fig)

    def _append(self, obj) -> None:
        """Show ``obj`` (a matplotlib figure, anything IPython can display, or a list of them)
        in the output area; safe from a worker thread."""
        from matplotlib.figure import Figure

        for item in obj if isinstance(obj, (list, tuple)) else [obj]:
            if isinstance(item, Figure):
                from IPython.display import Image

                item = Image(figure_png(item))
            self.output.append_display_data(item)

    def run(self) -> GenerationResult | None:
        """Generate with the current widget values (blocking); returns the result, or None on
        bad input (the error is shown in the panel and kept in ``self.error``). Other exceptions
        are bugs and propagate here; from a click they show in the panel too."""
        from .media import show_video

        self._stop.clear()
        self.result, self.error = None, None
        self.generate_button.disabled, self.stop_button.disabled = True, False
        try:
            seed = check_seed(self.seed.value)
            plan = self._plan()
            self.progress.max, self.progress.value = len(plan.steps), 0
            self._draw_budget(plan)
            self.status.value = f"{len(plan.steps)} sections of {plan.schedule.generated} frames: {plan.schedule.name}"
            first = self._first()
            extra = self.prepare(first) if self.prepare is not None else {}
            result = generate(self.backend, first, plan=plan, steps=int(self.steps.value),
                              seed=seed, callback=self._on_section, stop=self._stop.is_set, **extra)
        except (ValueError, FileNotFoundError) as e:
            self._show_error(problem(e))
            return None
        finally:
            self.generate_button.disabled, self.stop_button.disabled = False, True
        self.result = result
        word = "stopped after" if result.stopped else "done:"
        self.status.value = (f"{word} {len(result.section_seconds)}/{len(plan.steps)} sections, "
                             f"{result.seconds:.1f} s ({plan.order}, {plan.schedule.name})")
        self.strip.value = png_bytes(filmstrip(result.frames), scale=2)
        from IPython.display import HTML

        # not Output.clear_output(): from the worker thread its clear message does not reach the
        # browser (the e2e test saw the previous video stay above the new one); the synced trait does
        self.output.outputs = ()
        self._append(HTML(show_video(result.frames, fps=self.fps, height=192, return_html=True)))
        if self.on_result is not None:
            extra = self.on_result(result)
            if extra is not None:
                self._append(extra)
        return result
