"""The official HunyuanVideo FramePack loops as plans (plan.official_plan): no model, no diffusers.

The match against diffusers' own pipeline is in tests/test_hunyuan.py; here, the layout itself.
"""

import pytest

from framepack_lab.plan import (OFFICIAL_HISTORY, OFFICIAL_ORDERS, OFFICIAL_WINDOW, ORDERS, inverted_padding,
                                official_plan)
from framepack_lab.schedule import Kernel


def test_official_orders_are_ours():
    assert set(OFFICIAL_ORDERS) <= set(ORDERS)
    for order in OFFICIAL_ORDERS:
        assert official_plan(order, 2).order == order


@pytest.mark.parametrize("order", OFFICIAL_ORDERS)
@pytest.mark.parametrize("n_sections", [1, 2, 5])
def test_every_step_has_the_full_fixed_history(order, n_sections):
    plan = official_plan(order, n_sections)
    W = OFFICIAL_WINDOW
    assert plan.n_frames == 1 + n_sections * W and plan.total_frames == plan.n_frames + 1
    blank = plan.n_frames
    generated = sorted(f for s in plan.steps for f in s.generated)
    assert generated == list(range(1, plan.n_frames))  # every frame once; the blank frame never
    for step in plan.steps:
        anchor, *slots = step.groups
        assert anchor.frames == (0,) and anchor.positions == (0,) and anchor.kernel == Kernel.k(1)
        sizes = sorted((g.kernel.pf, len(g.frames)) for g in slots)
        assert sizes == [(1, OFFICIAL_HISTORY[0]), (2, OFFICIAL_HISTORY[1]), (4, OFFICIAL_HISTORY[2])]
        assert all(f == blank or 0 <= f < plan.n_frames for g in slots for f in g.frames)
        assert len(step.generated) == W and all(g.tail is None for g in step.groups)


def test_inverted_positions_follow_the_capped_padding():
    plan = official_plan("inverted_anti_drifting", 5)
    for i, step in enumerate(plan.steps):
        assert step.positions[0] == 1 + inverted_padding(5)[i] * OFFICIAL_WINDOW
    assert plan.steps[-1].generated[0] == 1  # the section next to the first frame comes last


def test_f1_positions_are_fixed():
    plan = official_plan("f1", 3)
    for step in plan.steps:
        assert step.positions == tuple(range(20, 29))
        assert sorted(p for g in step.groups[1:] for p in g.positions) == list(range(1, 20))


@pytest.mark.parametrize("bad,match", [("vanilla", "is our order 'f1'"), ("anti_drifting", "make_plan")])
def test_unknown_orders_say_what_to_use(bad, match):
    with pytest.raises(ValueError, match=match):
        official_plan(bad, 2)


def test_bad_sizes():
    with pytest.raises(ValueError, match="n_sections >= 1"):
        official_plan("f1", 0)
    with pytest.raises(ValueError, match="window >= 1"):
        official_plan("f1", 2, window=0)
