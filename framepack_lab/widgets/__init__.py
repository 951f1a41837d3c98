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

One module per panel (:mod:`.context_length_panel`, :mod:`.schedule_panel`,
:mod:`.generate_panel`) and :mod:`.common` for what they share (plan factories, PNG images, the
bad-input helpers); every public name is re-exported here. ipywidgets is imported when a panel
is made, matplotlib when it draws.
"""

from .common import (SEED_RANGE, TINY_LATENT, PlanFactory, as_html, check_seed, device_text, error_html, figure_png,
                     filmstrip, filmstrip_caption, official_plan_factory, png_bytes, png_html, problem)
from .context_length_panel import ContextLengthPanel
from .elo_panel import EloPanel  # noqa: F401  (the blind A/B study, notebook 07)
from .generate_panel import GeneratePanel
from .live import LiveFilmstrip
from .schedule_panel import SchedulePanel
from .train_panel import TrainPanel

__all__ = [
    "ContextLengthPanel",
    "SchedulePanel",
    "GeneratePanel",
    "TrainPanel",
    "PlanFactory",
    "official_plan_factory",
    "TINY_LATENT",
    "SEED_RANGE",
    "filmstrip",
    "filmstrip_caption",
    "LiveFilmstrip",
    "device_text",
    "png_html",
    "as_html",
    "figure_png",
    "png_bytes",
    "problem",
    "error_html",
    "check_seed",
]
