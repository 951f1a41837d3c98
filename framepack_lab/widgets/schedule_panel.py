"""The schedule panel: a schedule name or preset, an order and a video length, drawn instantly.

It shows the schedule's packing diagram, the plan of that order and the tokens of every step;
no model runs. Imports ipywidgets when a panel is made, and matplotlib through
:mod:`~framepack_lab.viz` when it draws.
"""

from __future__ import annotations

import html

from ..plan import ORDERS, Plan, make_plan
from ..presets import PRESETS
from ..schedule import Schedule, as_schedule
from .common import TINY_LATENT, PlanFactory, _bounded, _snapshot_html, error_html, figure_png, problem


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
        from .. import viz

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
