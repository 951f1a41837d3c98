"""Sampling orders as plans: invariants for every order x schedule x length, and exact layouts."""

import pytest

from framepack_lab.plan import (
    DEFAULT_SCHEDULES,
    ORDERS,
    Plan,
    anti_drifting,
    f1,
    inverted_anti_drifting,
    inverted_padding,
    make_plan,
    vanilla,
)
from framepack_lab.schedule import BASE, PRESETS, Kernel, parse

OFFICIAL_INVERTED = "f1k1_x_g9_f1k1f2k2f16k4_td"
OFFICIAL_F1 = "f1k1_x_f16k4f2k2f1k1_g9"
SCHEDULES = sorted({*DEFAULT_SCHEDULES.values(), *(p.name for p in PRESETS.values()), OFFICIAL_INVERTED,
                    OFFICIAL_F1, "ta_f4k2f1k1_g3", "tc_f4k2f1k1_g3_x_f1k1", "f1k1_x_g3_f1k1f2k2_tc"})
N_FRAMES = [2, 5, 17, 64, 100]
H = W = 16


def sections(n_frames, S):
    n = -(-(n_frames - 1) // S)
    return [list(range(1 + k * S, 1 + (k + 1) * S)) for k in range(n)]


def check_invariants(plan: Plan, h: int = H, w: int = W) -> None:
    sched = plan.schedule
    S = sched.generated
    assert plan.total_frames == 1 + len(sections(plan.n_frames, S)) * S
    assert plan.total_frames >= plan.n_frames > plan.total_frames - S
    assert len(plan) == len(plan.steps) == (plan.total_frames - 1) // S
    generated = [f for step in plan for f in step.generated]
    assert 0 not in generated
    assert sorted(generated) == list(range(1, plan.total_frames))  # each exactly once
    known = {0}
    for i, step in enumerate(plan):
        assert step.index == i
        assert step.schedule == sched
        gen = step.generated
        assert list(gen) == list(range(gen[0], gen[0] + S))
        assert len(step.positions) == S
        ctx = step.context_frames
        assert len(ctx) == len(set(ctx)), f"step {i}: a frame twice in the context"
        assert set(ctx) <= known, f"step {i}: context {sorted(set(ctx) - known)} not known yet"
        n_tail = 0
        left_frames, right_frames = [], []
        for g in step.groups:
            assert len(g.frames) >= 1
            assert list(g.frames) == sorted(g.frames)
            assert len(g.positions) == len(g.frames)
            if g.role == "tail":
                assert g.block is None and g.tail == sched.tail and sched.tail in ("ta", "tc")
                assert g.kernel == BASE
                n_tail += len(g.frames)
                side = left_frames if sched.tail_side == "left" else right_frames
                assert all((f < gen[0]) if sched.tail_side == "left" else (f > gen[-1]) for f in g.frames)
                continue
            assert g.role in ("left", "right") and g.tail is None
            assert g.block is not None and g.block in (sched.left.blocks if g.role == "left" else sched.right.blocks)
            assert len(g.frames) <= g.block.frames, "a group overflows its block"
            assert g.kernel == g.block.kernel
            (left_frames if g.role == "left" else right_frames).extend(g.frames)
        # block groups are listed in time order, left of the section, then right of it
        assert left_frames == sorted(left_frames) and all(f < gen[0] for f in left_frames)
        assert right_frames == sorted(right_frames) and all(f > gen[-1] for f in right_frames)
        # tokens: never more than the schedule's full budget for the tail that is kept
        assert step.token_count(h, w) <= sched.token_count(h, w, tail_frames=n_tail)
        bd = step.token_breakdown(h, w)
        assert bd[0] == (f"g{S}", S * (h // 2) * (w // 2))
        assert sum(n for _, n in bd) == step.token_count(h, w)
        assert len(bd) == 1 + len(step.groups)
        known.update(gen)
    assert plan.tokens_per_step(h, w) == [s.token_count(h, w) for s in plan]


@pytest.mark.parametrize("n_frames", N_FRAMES)
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("order", ORDERS)
def test_invariants(order, schedule, n_frames):
    plan = make_plan(order, n_frames, schedule)
    assert plan.order == order and plan.n_frames == n_frames
    assert plan.schedule == parse(schedule)
    check_invariants(plan)


@pytest.mark.parametrize("n_frames", N_FRAMES)
@pytest.mark.parametrize("order", ORDERS)
def test_default_schedules(order, n_frames):
    plan = make_plan(order, n_frames)
    assert plan.schedule == parse(DEFAULT_SCHEDULES[order])
    check_invariants(plan)


@pytest.mark.parametrize("order", ORDERS)
def test_steady_state_token_budget(order):
    """At 16x16 with 64 frames the last step has every block full: exactly the schedule's budget."""
    plan = make_plan(order, 64)
    budget = plan.schedule.token_count(H, W)
    tokens = plan.tokens_per_step(H, W)
    assert tokens[-1] == budget
    assert max(tokens) == budget
    last = plan.steps[-1]
    assert all(len(g.frames) == g.block.frames for g in last.groups)
    assert len(last.groups) == len(plan.schedule.blocks)


@pytest.mark.parametrize("order", ORDERS)
def test_token_budget_constant_in_video_length(order):
    """O(1) in video length: the largest step costs the same for 64 and for 400 frames."""
    assert max(make_plan(order, 64).tokens_per_step(H, W)) == max(make_plan(order, 400).tokens_per_step(H, W))


def test_positions_are_true_time_for_vanilla_and_anti_drifting():
    for plan in (vanilla(64), anti_drifting(64), inverted_anti_drifting(64, gap="true")):
        for step in plan:
            assert step.positions == step.generated
            for g in step.groups:
                assert g.positions == g.frames


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("order", ORDERS)
def test_positions_keep_time_order(order, schedule):
    """RoPE positions are a strictly increasing function of time within every step."""
    if order == "f1" and parse(schedule).tail in ("ta", "tc"):
        pytest.skip("f1 compacts positions around the kept blocks; a kept tail has no defined place")
    for step in make_plan(order, 40, schedule):
        pairs = sorted(zip(step.context_frames + step.generated,
                           [p for g in step.groups for p in g.positions] + list(step.positions)))
        pos = [p for _, p in pairs]
        assert pos == sorted(pos) and len(set(pos)) == len(pos)
        assert min(pos) >= 0


# ---------------------------------------------------------------------------------- vanilla
def test_vanilla_first_step_sees_only_frame_zero():
    for schedule in SCHEDULES:
        plan = vanilla(17, schedule)
        first = plan.steps[0]
        assert first.context_frames == (0,)
        assert first.generated == tuple(range(1, 1 + plan.schedule.generated))


def test_vanilla_layout():
    plan = vanilla(64)  # td_f16k4f4k2f2k1_g4
    step = plan.steps[-1]
    assert step.generated == (61, 62, 63, 64)
    assert [(g.kernel, g.frames) for g in step.groups] == [
        (Kernel.k(4), tuple(range(39, 55))), (Kernel.k(2), (55, 56, 57, 58)), (BASE, (59, 60))]
    assert all(g.role == "left" for g in step.groups)
    assert vanilla(64).steps[2].groups[0].frames == (0, 1, 2)  # a short k4 block before the history fills


def test_vanilla_tail_options():
    ta = vanilla(40, "ta_f4k2f1k1_g3").steps[-1]
    tail = ta.groups[0]
    assert tail.role == "tail" and tail.tail == "ta"
    assert tail.frames == tuple(range(0, ta.generated[0] - 5))
    assert tail.tokens(H, W) == len(tail.frames)
    tc = vanilla(40, "tc_f4k2f1k1_g3").steps[-1]
    assert tc.groups[0].tail == "tc" and tc.groups[0].tokens(H, W) == 1
    td = vanilla(40, "td_f4k2f1k1_g3").steps[-1]
    assert all(g.role != "tail" for g in td.groups)
    assert ta.token_count(H, W) == td.token_count(H, W) + len(tail.frames)
    assert tc.token_count(H, W) == td.token_count(H, W) + 1


# ---------------------------------------------------------------------------- anti-drifting
@pytest.mark.parametrize("n_frames", [6, 9, 17, 64, 100])
def test_anti_drifting_endpoints_first(n_frames):
    plan = anti_drifting(n_frames)
    S = plan.schedule.generated
    secs = sections(n_frames, S)
    assert list(plan.steps[0].generated) == secs[0]
    assert list(plan.steps[1].generated) == secs[-1]
    assert [list(s.generated) for s in plan.steps[2:]] == secs[1:-1]
    # the closing section is generated before the gap, from the packed opening only
    assert set(plan.steps[1].context_frames) <= set([0] + secs[0])
    # every fill sees the end of the video through the far endpoint block
    for step in plan.steps[2:]:
        right = [g for g in step.groups if g.role == "right"]
        assert [g.frames for g in right] == [(plan.total_frames - 1,)]


def test_anti_drifting_two_frames_single_step():
    plan = anti_drifting(2)
    assert len(plan) == 1 and plan.steps[0].context_frames == (0,)


# ----------------------------------------------------------------------- inverted anti-drifting
@pytest.mark.parametrize("N", range(0, 12))
def test_inverted_padding(N):
    if N <= 4:
        assert inverted_padding(N) == list(reversed(range(N)))
    else:
        assert inverted_padding(N) == [3] + [2] * (N - 3) + [1, 0]
    assert len(inverted_padding(N)) == N


@pytest.mark.parametrize("N", range(0, 12))
def test_inverted_padding_true_and_capped_gaps(N):
    true = list(reversed(range(N)))
    assert inverted_padding(N, "true") == true
    assert inverted_padding(N, 0) == [0] * N
    assert inverted_padding(N, 3) == [min(p, 3) for p in true]
    assert inverted_padding(N, max(N - 1, 0)) == true  # a cap the video never reaches is the true gap
    assert inverted_padding(N, "official") == inverted_padding(N)


@pytest.mark.parametrize("bad", [-1, True, 2.0, "capped", None])
def test_inverted_gap_refuses_what_it_cannot_honour(bad):
    with pytest.raises(ValueError, match="gap must be one of"):
        inverted_padding(5, bad)
    with pytest.raises(ValueError, match="gap must be one of"):
        inverted_anti_drifting(17, None, bad)


def test_make_plan_gap_is_the_inverted_orders_only():
    for gap in ("official", "true", 2):
        assert make_plan("inverted_anti_drifting", 64, gap=gap) == inverted_anti_drifting(64, gap=gap)
    assert make_plan("inverted_anti_drifting", 64) == inverted_anti_drifting(64, gap="official")
    for order in ("vanilla", "anti_drifting", "f1"):
        with pytest.raises(ValueError, match="inverted_anti_drifting only"):
            make_plan(order, 64, gap="true")
    with pytest.raises(ValueError, match="gap must be one of"):
        make_plan("inverted_anti_drifting", 64, gap=-2)


@pytest.mark.parametrize("gap", ["true", 0, 6])
def test_inverted_gap_moves_only_rope_positions(gap):
    """Every gap generates the same frames from the same context; only the RoPE times differ, and
    the first step (the video's end) sits 1 + pad * S after the anchor."""
    official, other = inverted_anti_drifting(64), inverted_anti_drifting(64, gap=gap)
    S = official.schedule.generated
    assert [s.generated for s in official] == [s.generated for s in other]
    assert [[g.frames for g in s.groups] for s in official] == [[g.frames for g in s.groups] for s in other]
    pads = inverted_padding(len(other), gap)
    assert [s.positions[0] for s in other] == [1 + p * S for p in pads]
    if gap == "true":
        assert other.steps[0].positions[0] == other.steps[0].generated[0]


@pytest.mark.parametrize("schedule", [None, OFFICIAL_INVERTED])
@pytest.mark.parametrize("n_frames", [2, 5, 17, 64, 100])
def test_inverted_generates_backwards_toward_the_anchor(schedule, n_frames):
    plan = inverted_anti_drifting(n_frames, schedule)
    S = plan.schedule.generated
    secs = sections(n_frames, S)
    pads = inverted_padding(len(secs))
    assert [list(s.generated) for s in plan] == secs[::-1]
    first = plan.steps[0]
    assert list(first.generated) == secs[-1]
    assert first.positions == tuple(range(1 + pads[0] * S, 1 + pads[0] * S + S))
    assert first.context_frames == (0,)
    for step, pad in zip(plan, pads):
        assert step.positions[0] == 1 + pad * S
        anchor = step.groups[0]
        assert anchor.frames == (0,) and anchor.positions == (0,) and anchor.kernel == BASE
        # the already generated future follows the section without a gap in RoPE time
        right = [p for g in step.groups if g.role == "right" for p in g.positions]
        assert right == list(range(step.positions[-1] + 1, step.positions[-1] + 1 + len(right)))
    assert plan.steps[-1].generated[0] == 1 and plan.steps[-1].positions[0] == 1


def test_inverted_official_layout_matches_the_official_indices():
    """[start 1 | blank pad*9 | noisy 9 | post 1 | 2x 2 | 4x 16] with a full history."""
    plan = inverted_anti_drifting(100, OFFICIAL_INVERTED)  # 11 sections, pads [3,2,...,2,1,0]
    for k in (5, 9, 10):
        step = plan.steps[k]
        pad = inverted_padding(11)[k]
        base = 1 + pad * 9
        assert step.positions == tuple(range(base, base + 9))
        g = step.groups
        assert [(x.role, x.kernel.name, len(x.frames)) for x in g] == [
            ("left", "k1", 1), ("right", "k1", 1), ("right", "k2", 2), ("right", "k4", 16)]
        assert g[0].positions == (0,)
        assert g[1].positions == (base + 9,)
        assert g[2].positions == (base + 10, base + 11)
        assert g[3].positions == tuple(range(base + 12, base + 28))
        assert g[1].frames == (step.generated[-1] + 1,)
        assert step.token_count(80, 76) == 17500


# ------------------------------------------------------------------------------------- f1
@pytest.mark.parametrize("schedule", [None, OFFICIAL_F1, PRESETS["important_start"].name,
                                      PRESETS["symmetric"].name, PRESETS["official_vanilla"].name])
@pytest.mark.parametrize("n_frames", [2, 5, 17, 64, 100])
def test_f1_anchor_at_zero_and_compact_positions(schedule, n_frames):
    plan = f1(n_frames, schedule)
    sched = plan.schedule
    n_far = sum(b.frames for b in sched.left.far)
    assert [list(s.generated) for s in plan] == sections(n_frames, sched.generated)  # forward order
    for step in plan:
        all_pos = sorted([p for g in step.groups for p in g.positions] + list(step.positions))
        # no gaps: positions do not grow with the video
        assert all_pos == list(range(len(all_pos)))
        if n_far:
            anchors = [g for g in step.groups if g.frames[0] < n_far and g.role == "left"]
            assert anchors[0].frames[0] == 0 and anchors[0].positions[0] == 0
        # the noisy section is last in RoPE time
        assert step.positions[-1] == all_pos[-1]


def test_f1_official_layout_matches_the_official_indices():
    """[start 1 | 4x 16 | 2x 2 | 1x 1 | noisy 9] with a full history."""
    plan = f1(100, OFFICIAL_F1)
    for step in plan.steps[3:]:
        g = step.groups
        assert [(x.kernel.name, len(x.frames)) for x in g] == [("k1", 1), ("k4", 16), ("k2", 2), ("k1", 1)]
        assert g[0].frames == (0,) and g[0].positions == (0,)
        assert g[1].positions == tuple(range(1, 17))
        assert g[2].positions == (17, 18)
        assert g[3].positions == (19,)
        assert g[3].frames == (step.generated[0] - 1,)
        assert step.positions == tuple(range(20, 29))


# ---------------------------------------------------------------------------------- errors
def test_bad_order_name():
    with pytest.raises(ValueError, match="unknown sampling order 'backwards'"):
        make_plan("backwards", 17)


@pytest.mark.parametrize("n", [0, 1, -3, 2.5])
def test_bad_n_frames(n):
    for order in ORDERS:
        with pytest.raises(ValueError, match="n_frames"):
            make_plan(order, n)


def test_bad_schedule_name_propagates():
    with pytest.raises(ValueError, match="'zz'"):
        make_plan("vanilla", 17, "td_zz_g4")


# ------------------------------------------------------------------ one loop, one build per step
@pytest.mark.parametrize("order", ORDERS)
def test_every_order_builds_each_step_once(order, monkeypatch):
    import framepack_lab.plan as plan_module

    calls = []
    build = plan_module._build_step
    monkeypatch.setattr(plan_module, "_build_step", lambda *a: calls.append(a[0]) or build(*a))
    plan = make_plan(order, 40)
    assert calls == list(range(len(plan.steps)))


def test_tail_groups_count_tokens_by_the_schedule_rule():
    from framepack_lab.schedule import tail_token_count

    for tail in ("ta", "tc"):
        plan = vanilla(40, f"{tail}_f2k1_g4")
        for step in plan.steps:
            for g in step.groups:
                if g.role == "tail":
                    assert g.tokens(H, W) == tail_token_count(tail, len(g.frames)) == step.schedule.tail_tokens(len(g.frames))
