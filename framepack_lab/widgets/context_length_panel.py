"""The Eq. 1-3 panel: sliders for lambda, history T, section S and ``L_f``, and the figure they drive.

Imports ipywidgets when a panel is made, and matplotlib through :mod:`~framepack_lab.viz` when it
draws; the equations are :mod:`~framepack_lab.context_length` (plain Python).
"""

from __future__ import annotations

from ..context_length import context_length, context_length_limit, unpacked_length
from .common import _bounded, _snapshot_html, error_html, figure_png, problem


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
        from .. import viz

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
