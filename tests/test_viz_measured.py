"""Figures of measured things: drift curves, Table 1 bars, RoPE phase panels, section costs."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from framepack_lab import viz
from framepack_lab.cost import SectionCost
from framepack_lab.schedule import Kernel


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_drift_one_line_per_curve_and_both_windows_shaded():
    fig = viz.plot_drift({"vanilla": np.linspace(0, 1, 40), "f1": np.zeros(40)}, title="colour_drift")
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    assert len(ax.patches) == 2  # first and last 15%
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("vanilla" in t and "Δ=" in t for t in labels)


def test_plot_table1_one_bar_per_row_and_panel():
    summary = pd.DataFrame({"order": ["vanilla", "f1"], "schedule": ["a", "b"],
                            "delta_colour_drift_mean": [0.2, 0.1], "delta_colour_drift_std": [0.01, 0.02],
                            "delta_clarity_mean": [1.0, 2.0], "delta_clarity_std": [0.1, 0.1],
                            "dynamic_mean_mean": [0.01, 0.02], "dynamic_mean_std": [0.0, 0.0], "n": [2, 2]})
    fig = viz.plot_table1(summary)
    assert len(fig.axes) == 3
    assert all(len(ax.patches) == 2 for ax in fig.axes)


def test_plot_rope_alignment_panels():
    fig = viz.plot_rope_alignment(list(range(39, 55)), (8, 8), Kernel.k(4), (8, 12, 12), 256.0)
    assert len(fig.axes) == 8 + 1  # (base + 3 alignments) x (y row, t row), and the colourbar
    assert fig.axes[1].images[0].get_array().shape == (2, 2)  # k4 on an 8x8 base grid


def test_plot_section_costs_time_against_history_and_tokens_with_the_fit():
    c = SectionCost("packed", [1, 5, 9], [300, 400, 400], [0.1, 0.12, 0.12], [1.0, 2.0, 2.0],
                    [[0.09, 0.11, 0.12], [0.1, 0.12, 0.13], [0.2, 0.12, 0.12]])
    u = SectionCost("unpacked", [1, 5, 9], [320, 576, 832], [0.1, 0.2, 0.3], [1.0, 3.0, 5.0])
    fig = viz.plot_section_costs({"packed": c, "unpacked": u})
    left, right = fig.axes
    assert len(left.lines) == 2 and len(left.collections) == 2  # a median line and a repeat band each
    band = left.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(90) and band.max() == pytest.approx(200)  # fastest .. slowest repeat, ms
    assert len(right.lines) == 3  # packed, unpacked, the fit
    assert list(right.lines[1].get_xdata()) == [320, 576, 832]
    assert list(right.lines[1].get_ydata()) == pytest.approx([100, 200, 300])  # ms
    assert "ms" in left.get_ylabel() and "tokens" in right.get_xlabel()


def test_plot_section_costs_memory_panel_only_when_asked():
    c = SectionCost("packed", [1, 5, 9], [300, 400, 400], [0.1, 0.12, 0.12], [1.0, 2.0, 2.0])
    fig = viz.plot_section_costs({"packed": c}, memory=True)
    assert len(fig.axes) == 3 and list(fig.axes[2].lines[0].get_ydata()) == [1.0, 2.0, 2.0]
    assert "MB" in fig.axes[2].get_ylabel()


def test_plot_table1_error_bars_are_the_stated_interval():
    s = _summary()
    s["n"] = [4, 4]
    fig = viz.plot_table1(s, ["delta_colour_drift"])
    seg = fig.axes[0].collections[0].get_segments()[0]  # the first row's whisker
    half = (seg[1][0] - seg[0][0]) / 2
    assert half == pytest.approx(3.182 * 0.01 / 2)  # t(0.975, 3) * sd / sqrt(4)
    assert "95% confidence interval" in fig.get_suptitle() and "4 worlds" in fig.get_suptitle()
    fig = viz.plot_table1(s, ["delta_colour_drift"], error="sd")
    seg = fig.axes[0].collections[0].get_segments()[0]
    assert (seg[1][0] - seg[0][0]) / 2 == pytest.approx(0.01) and "standard deviation" in fig.get_suptitle()
    with pytest.raises(ValueError, match="error must be"):
        viz.plot_table1(s, error="se")
    with pytest.raises(ValueError, match="column 'n'"):
        viz.plot_table1(_summary())


def test_plot_rope_alignment_has_a_colourbar_and_labelled_axes():
    fig = viz.plot_rope_alignment(list(range(39, 55)), (8, 8), Kernel.k(4), (8, 12, 12), 256.0)
    assert fig.axes[-1].get_ylabel() == "cos(phase)"  # the colourbar
    assert all(a.get_xlabel() and a.get_ylabel() for a in fig.axes[:-1])
    assert "k4 tokens" in fig.axes[1].get_xlabel() and "base tokens" in fig.axes[0].get_xlabel()


# ------------------------------------------------------------------ every figure draws into given axes
def _summary():
    return pd.DataFrame({"order": ["vanilla", "f1"], "schedule": ["a", "b"],
                         "delta_colour_drift_mean": [0.2, 0.1], "delta_colour_drift_std": [0.01, 0.02],
                         "delta_clarity_mean": [1.0, 2.0], "delta_clarity_std": [0.1, 0.1],
                         "dynamic_mean_mean": [0.01, 0.02], "dynamic_mean_std": [0.0, 0.0]})


def _costs():
    c = SectionCost("packed", [1, 5, 9], [300, 400, 400], [0.1, 0.12, 0.12], [1.0, 2.0, 2.0])
    return {"packed": c}


MULTI_PANEL = {  # figure -> (call with ax, panels it draws)
    "plot_table1": (lambda ax: viz.plot_table1(_summary(), error="sd", ax=ax), 3),
    "plot_rope_alignment": (lambda ax: viz.plot_rope_alignment(range(4, 12), (4, 4), "k2", ax=ax), 8),
    "plot_section_costs": (lambda ax: viz.plot_section_costs(_costs(), ax=ax), 2),
}
EXTRA_AXES = {"plot_rope_alignment": 1}  # its colourbar


@pytest.mark.parametrize("name", MULTI_PANEL)
def test_multi_panel_figures_draw_into_the_axes_given(name):
    draw, n = MULTI_PANEL[name]
    fig = plt.figure()
    axes = fig.subplots(1, n)
    assert draw(axes) is fig
    assert len(fig.axes) == n + EXTRA_AXES.get(name, 0) and all(a.has_data() for a in axes.ravel())
    assert fig.get_suptitle() == ""  # the caller's figure keeps its own title


@pytest.mark.parametrize("name", MULTI_PANEL)
def test_multi_panel_figures_divide_one_given_axes(name):
    draw, n = MULTI_PANEL[name]
    fig, (left, right) = plt.subplots(1, 2)
    right.plot([0, 1])
    assert draw(left) is fig
    assert right in fig.axes and left not in fig.axes
    assert len(fig.axes) == n + 1 + EXTRA_AXES.get(name, 0)


@pytest.mark.parametrize("name", MULTI_PANEL)
def test_multi_panel_figures_refuse_the_wrong_number_of_axes(name):
    draw, n = MULTI_PANEL[name]
    fig = plt.figure()
    with pytest.raises(ValueError, match=f"draws {n} panels"):
        draw(fig.subplots(1, n + 1))


def test_plot_drift_into_given_ax():
    fig, (a, b) = plt.subplots(1, 2)
    assert viz.plot_drift({"vanilla": np.linspace(0, 1, 20)}, ax=b) is fig
    assert len(b.lines) == 1 and not a.lines
