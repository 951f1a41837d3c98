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

Four modules, every public name re-exported here:

* :mod:`.style`: the look all figures share (kernel colours and labels, the axes helpers);
* :mod:`.plans`: figures of schedules and plans (context length, packing diagram, step tokens,
  plan grid). They need only :mod:`~framepack_lab.schedule` and :mod:`~framepack_lab.plan`
  (plain Python), so they are instant and need no torch;
* :mod:`.measured`: figures of measured things (drift curves, Table 1 bars, RoPE alignment,
  section cost). :func:`plot_drift` imports :mod:`~framepack_lab.metrics` and
  :func:`plot_rope_alignment` imports :mod:`~framepack_lab.rope` when called (both need torch);
  :func:`plot_table1` reads a pandas DataFrame;
* :mod:`.model_view`: what the model sees at one step of a plan: the packed context decoded at
  each kernel's coarseness with its token grid, beside the section's denoising
  (:func:`model_view`; the data behind it: :func:`context_as_seen`, :func:`denoise_trace`). It
  imports torch and runs the model.

Imports: matplotlib and numpy (every module draws with them). Besides this package only the
panels (:mod:`~framepack_lab.widgets`) and the ``--plot`` option of
:mod:`~framepack_lab.evaluate` import matplotlib; the core never does.
"""

from .measured import ORDER_COLOURS, plot_drift, plot_rope_alignment, plot_section_costs, plot_table1
from .model_view import DenoiseTrace, SeenFrame, context_as_seen, denoise_trace, model_view
from .plans import plot_context_length, plot_packing_diagram, plot_plan, plot_step_tokens
from .style import (GENERATED_COLOUR, KERNEL_COLOURS, KNOWN_COLOUR, TAIL_COLOUR, TAIL_HATCH, kernel_colour,
                    kernel_label)

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
    "model_view",
    "context_as_seen",
    "denoise_trace",
    "SeenFrame",
    "DenoiseTrace",
]
