"""viz: every figure draws for presets, names and plans, returns a Figure, and counts add up."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from framepack_lab import viz  # noqa: E402
from framepack_lab.plan import DEFAULT_SCHEDULES, ORDERS, make_plan  # noqa: E402
from framepack_lab.schedule import BASE, PRESETS, Kernel, parse  # noqa: E402

EXTRA = ["ta_f4k2f1k1_g3", "tc_f4k2f1k1_g3_x_f1k1", "f1k1_x_g3_f1k1f2k2_tc", "td_f16k4f4k2f1k1_g9+D",
         "x_f2k1_g2", "f2k1_g2_x"]
SCHEDULES = sorted({*PRESETS, *DEFAULT_SCHEDULES.values(), *EXTRA})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_kernel_colours_consistent():
    assert viz.KERNEL_COLOURS["k2"] == viz.KERNEL_COLOURS[Kernel.k(2)] == viz.kernel_colour("k2")
    assert viz.KERNEL_COLOURS["k1"] == viz.kernel_colour(BASE)
    # equal compression -> equal colour; distinct rates -> distinct colours
    assert viz.kernel_colour("k4") == viz.kernel_colour("k1h16w16")
    listed = [viz.KERNEL_COLOURS[k] for k in viz.KERNEL_COLOURS]
    assert list(viz.KERNEL_COLOURS) == ["k1", "k2", "k4", "k8", "k16"]
    assert len(set(listed[:4])) == 4
    assert viz.GENERATED_COLOUR not in listed
    with pytest.raises(KeyError):
        viz.KERNEL_COLOURS["q3"]
    assert viz.kernel_label("k2") == "k2 (2,4,4) 8x"


@pytest.mark.parametrize("log_y", [False, True])
def test_plot_context_length(log_y):
    lambdas = (1.5, 2, 3)
    schedules = ["official_vanilla", "td_f16k4f2k2f1k1_g1", parse("td_f16k4f4k2f2k1_g4")]
    fig = viz.plot_context_length(lambdas=lambdas, schedules=schedules, T_max=40, log_y=log_y, mark_T=7)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_yscale() == ("log" if log_y else "linear")
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert sum(lab.startswith("Eq. 2") for lab in labels) == len(lambdas)
    assert sum(lab.startswith("Eq. 3 limit") for lab in labels) == len(lambdas)
    assert sum("real tokens" in lab for lab in labels) == len(schedules)
    # the Eq. 3 line sits at (S + lambda/(lambda-1)) L_f
    lim2 = [line for line in ax.get_lines() if line.get_label().startswith("Eq. 3 limit, $\\lambda$=2")][0]
    assert lim2.get_ydata()[0] == pytest.approx((1 + 2) * 1560)
    # the schedule curve is the real token count of vanilla steps, and saturates
    sched = parse("td_f16k4f4k2f2k1_g4")
    curve = [line for line in ax.get_lines() if line.get_label().startswith(sched.name)][0]
    ys = np.asarray(curve.get_ydata())
    assert ys[-1] == sched.token_count(60, 104)
    assert np.all(np.diff(ys) >= 0)


def test_plot_context_length_into_given_ax_and_bad_input():
    fig, ax = plt.subplots()
    assert viz.plot_context_length(L_f=100, S=2, lambdas=(2,), ax=ax) is fig
    with pytest.raises(ValueError):
        viz.plot_context_length(lambdas=(1.0,))
    with pytest.raises(ValueError):
        viz.plot_context_length(schedules=["not_a_schedule"])


@pytest.mark.parametrize("spec", SCHEDULES)
def test_plot_packing_diagram(spec):
    sched = parse(PRESETS[spec].name) if spec in PRESETS else parse(spec)
    fig = viz.plot_packing_diagram(spec, latent_hw=(16, 16))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    # one square per frame (context + generated) plus one outline per block and the section
    n_frames = sched.context_frames + sched.generated
    n_outlines = len(sched.blocks) + 1
    assert len(ax.patches) == n_frames + n_outlines
    title = ax.get_title()
    assert sched.name in title and f"{sched.token_count(16, 16):,} tokens" in title
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("x") == sched.left.skip + sched.right.skip
    if sched.tail:
        assert any(t.startswith(sched.tail + "\n") for t in texts)


@pytest.mark.parametrize("name", ["td_f16k4f4k2f1k1_g9", "f1k1_x_g9_f1k1f2k2f16k4_td", "symmetric"])
def test_packing_diagram_area_is_tokens(name):
    """Squares have area = tokens / L_f (no frame here is small enough to hit the drawing floor)."""
    sched = parse(PRESETS[name].name) if name in PRESETS else parse(name)
    fig = viz.plot_packing_diagram(sched, latent_hw=(16, 16))
    L = BASE.tokens(1, 16, 16)
    filled = [p for p in fig.axes[0].patches if p.get_fill() and p.get_width() == p.get_height()]
    total_area = sum(p.get_width() * p.get_height() for p in filled)
    assert total_area * L == pytest.approx(sched.token_count(16, 16))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("schedule", [None, "official_inverted", "ta_f4k2f1k1_g3", "f1k1_x_g3_f1k1f2k2_tc"])
def test_plot_step_tokens(order, schedule):
    plan = make_plan(order, 33, schedule)
    fig = viz.plot_step_tokens(plan, latent_hw=(16, 16))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    gen_bars = ax.containers[0]
    assert len(gen_bars) == len(plan)
    # stacked: one bar segment per generated section and per context group
    n_segments = sum(len(c) for c in ax.containers)
    assert n_segments == len(plan) + sum(len(s.groups) for s in plan)
    # every stack reaches the step's token count
    tops = {}
    for c in ax.containers:
        for r in c:
            x = round(r.get_x() + r.get_width() / 2)
            tops[x] = max(tops.get(x, 0), r.get_y() + r.get_height())
    assert [tops[i] for i in range(len(plan))] == plan.tokens_per_step(16, 16)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == f"{plan.steps[0].generated[0]}\u2013{plan.steps[0].generated[-1]}"
    budget = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert budget and budget[0].get_ydata()[0] == plan.schedule.token_count(16, 16)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n_frames", [2, 17, 64])
def test_plot_plan(order, n_frames):
    plan = make_plan(order, n_frames)
    fig = viz.plot_plan(plan)
    assert isinstance(fig, Figure)
    grid = np.asarray(fig.axes[0].images[0].get_array())
    assert grid.shape == (len(plan), plan.total_frames, 3)
    dark = np.array(to_rgb(viz.GENERATED_COLOUR))
    white = np.ones(3)
    for r, step in enumerate(plan):
        is_dark = np.all(np.isclose(grid[r], dark), axis=1)
        assert sorted(np.flatnonzero(is_dark)) == list(step.generated)
        for g in step.groups:
            for f in g.frames:
                assert np.allclose(grid[r, f], to_rgb(viz.kernel_colour(g.kernel)) if not g.tail
                                   else to_rgb(viz.TAIL_COLOUR))
        known = {0} | {f for s in plan.steps[:r] for f in s.generated}
        blank = np.all(np.isclose(grid[r], white), axis=1)
        assert set(np.flatnonzero(blank)) == set(range(plan.total_frames)) - known - set(step.generated)


def test_plot_plan_with_tail_and_given_ax():
    plan = make_plan("vanilla", 40, "ta_f4k2f1k1_g3")
    fig, axes = plt.subplots(1, 2)
    assert viz.plot_plan(plan, ax=axes[0]) is fig
    assert viz.plot_step_tokens(plan, ax=axes[1]) is fig
    assert viz.plot_packing_diagram(plan.schedule, ax=axes[1]) is fig
