"""Packing one step into tensors, kernel realisation, tail groups, and RoPE phase alignment."""

import math

import pytest
import torch
import torch.nn.functional as F

from framepack_lab.packing import PackedContext, check_latent_size, pack, realise
from framepack_lab.plan import DEFAULT_SCHEDULES, ORDERS, Group, Step, make_plan, vanilla
from framepack_lab.rope import (
    HUNYUAN_AXES,
    apply_rope,
    axis_frequencies,
    phase_grid,
    pool_grid,
    pooled_phases,
)
from framepack_lab.schedule import BASE, PRESETS, Kernel, parse

K1, K2, K4, K8 = (Kernel.k(n) for n in (1, 2, 4, 8))
AVAILABLE = (K1, K2, K4, K8)
AXES = (4, 6, 6)


def latents(T, H=16, W=16, B=2, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, C, T, H, W, generator=g)


def tokens_of(x: torch.Tensor, k: Kernel) -> int:
    """Tokens a conv patch embedding with kernel = stride = k makes from x, exactly (no padding)."""
    t, h, w = x.shape[-3:]
    assert t % k.pf == 0 and h % k.ph == 0 and w % k.pw == 0, "latents not tiled by the embed kernel"
    return (t // k.pf) * (h // k.ph) * (w // k.pw)


# ------------------------------------------------------------------------------- realise
def test_realise_big_kernel_pools_then_k8():
    assert realise(Kernel(16, 32, 32), AVAILABLE) == (K8, (2, 2, 2))


def test_realise_per_frame_kernel_pools_then_k1():
    assert realise(Kernel(1, 8, 8), AVAILABLE) == (K1, (1, 4, 4))


@pytest.mark.parametrize("k", AVAILABLE)
def test_realise_available_kernel_is_itself(k):
    assert realise(k, AVAILABLE) == (k, (1, 1, 1))


def test_realise_picks_largest_divisor():
    assert realise(Kernel(2, 8, 8), AVAILABLE) == (K2, (1, 2, 2))
    assert realise(Kernel(4, 8, 8), (K1, K2)) == (K2, (2, 2, 2))
    assert realise(K8, (K1,)) == (K1, (8, 8, 8))


def test_realise_without_a_divisor_raises():
    with pytest.raises(ValueError, match="cannot be built"):
        realise(K2, (K4,))


# ---------------------------------------------------------------------------------- pack
STEP_CASES = [(order, sched, n) for order in ORDERS
              for sched in (DEFAULT_SCHEDULES[order], PRESETS["symmetric"].name, PRESETS["geometric"].name,
                            "f1k1_x_g9_f1k1f2k2f16k4_td", "td_f16k16h32w32f2k1_g4")
              for n in (9, 40)]


@pytest.mark.parametrize("order,schedule,n_frames", STEP_CASES)
def test_pack_token_counts_match_plan(order, schedule, n_frames):
    plan = make_plan(order, n_frames, schedule)
    video = latents(plan.total_frames)
    for step in plan:
        ctx = pack(video, step, AVAILABLE)
        assert isinstance(ctx, PackedContext)
        assert len(ctx.groups) == len(step.groups)
        assert ctx.positions == step.positions and ctx.latent_size == (16, 16) and ctx.grid == (8, 8)
        for pg, g in zip(ctx.groups, step.groups):
            assert pg.frames == g.frames and pg.positions == g.positions and pg.kernel == g.kernel
            assert pg.n_tokens == tokens_of(pg.latents, pg.embed_kernel) == g.tokens(16, 16)
            assert pg.latents.shape[:2] == (2, 3)
            cos, sin = pg.phases(AXES, 256.0)
            assert cos.shape == sin.shape == (pg.n_tokens, sum(AXES))
        noisy = len(step.generated) * 8 * 8
        assert ctx.n_tokens + noisy == step.token_count(16, 16)
        cos, sin = ctx.context_phases(AXES)
        assert cos.shape == (ctx.n_tokens, sum(AXES))
        assert ctx.noisy_phases(AXES)[0].shape == (noisy, sum(AXES))


def test_pack_big_kernel_is_average_pool():
    # a (16, 32, 32) block on a k1..k8 backend: replicate pad, 2x2x2 average, then k8
    step = Step(0, (20,), (20,), (Group(Kernel(16, 32, 32), tuple(range(4, 20)), tuple(range(4, 20)), "left"),),
                parse("f16k16h32w32_g1"))
    video = latents(21, 32, 32)
    pg = pack(video, step, AVAILABLE).groups[0]
    assert pg.embed_kernel == K8
    assert pg.latents.shape == (2, 3, 8, 16, 16)
    assert torch.allclose(pg.latents, F.avg_pool3d(video[:, :, 4:20], 2))
    assert pg.rope_ratio == (16, 16, 16) and pg.n_tokens == 1


def test_pack_per_frame_kernel_pools_spatially():
    step = Step(0, (1,), (1,), (Group(Kernel(1, 8, 8), (0,), (0,), "left"),), parse("f1k1h8w8_g1"))
    video = latents(2)
    pg = pack(video, step, AVAILABLE).groups[0]
    assert pg.embed_kernel == K1
    assert torch.allclose(pg.latents, F.avg_pool3d(video[:, :, :1], (1, 4, 4)))
    assert pg.n_tokens == 4 and pg.rope_ratio == (1, 4, 4)


def test_replicate_padding_of_a_short_k4_block():
    # vanilla td_f16k4f4k2f2k1_g4, step 2: the k4 block holds only frames 0, 1, 2
    plan = vanilla(20)
    step = plan.steps[2]
    g4 = step.groups[0]
    assert g4.kernel == K4 and g4.frames == (0, 1, 2)
    video = latents(plan.total_frames, H=12, W=20)
    pg = pack(video, step, AVAILABLE).groups[0]
    assert pg.embed_kernel == K4
    assert pg.latents.shape == (2, 3, 4, 16, 24)  # t 3 -> 4, h 12 -> 16, w 20 -> 24
    x = video[:, :, [0, 1, 2]]
    assert torch.equal(pg.latents[:, :, :3, :12, :20], x)
    assert torch.equal(pg.latents[:, :, 3, :12, :20], x[:, :, 2])  # last frame repeated
    assert torch.equal(pg.latents[:, :, :3, 12:, :20], x[:, :, :, 11:12].expand(-1, -1, -1, 4, -1))
    assert torch.equal(pg.latents[:, :, :3, :12, 20:], x[..., 19:20].expand(-1, -1, -1, -1, 4))
    assert torch.equal(pg.latents[:, :, 3, 15, 23], x[:, :, 2, 11, 19])
    assert pg.n_tokens == 1 * 2 * 3 == g4.tokens(12, 20)


def test_pack_with_base_only_backend():
    # every kernel realised from k1 alone: pooled by the kernel ratio
    plan = vanilla(30)
    step = plan.steps[-1]
    video = latents(plan.total_frames)
    ctx = pack(video, step)
    for pg, g in zip(ctx.groups, step.groups):
        assert pg.embed_kernel == BASE
        assert pg.n_tokens == g.tokens(16, 16)
        if g.kernel == K4:
            assert torch.allclose(pg.latents, F.avg_pool3d(video[:, :, list(g.frames)], (4, 4, 4)), atol=1e-6)


@pytest.mark.parametrize("tail", ["ta", "tc"])
def test_tail_groups(tail):
    plan = vanilla(40, f"{tail}_f4k2f1k1_g3")
    step = plan.steps[-1]
    video = latents(plan.total_frames)
    ctx = pack(video, step, AVAILABLE)
    pg = ctx.groups[0]
    g = step.groups[0]
    assert pg.tail == tail == g.tail
    n = len(g.frames)
    assert n > 1
    x = video[:, :, list(g.frames)]
    if tail == "ta":
        assert pg.n_tokens == n == g.tokens(16, 16)
        assert pg.latents.shape == (2, 3, n, 2, 2)
        assert torch.allclose(pg.latents[..., 0, 0], x.mean(dim=(3, 4)))
    else:
        assert pg.n_tokens == 1 == g.tokens(16, 16)
        assert pg.latents.shape == (2, 3, 1, 2, 2)
        assert torch.allclose(pg.latents[:, :, 0, 1, 1], x.mean(dim=(2, 3, 4)))
    cos, sin = pg.phases(AXES)
    assert cos.shape == (pg.n_tokens, sum(AXES))
    # the tail's phases are the average over its frames' full grids
    full_cos, _ = phase_grid(g.positions, 8, 8, AXES)
    expect = full_cos.mean(dim=(1, 2)) if tail == "ta" else full_cos.mean(dim=(0, 1, 2))[None]
    assert torch.allclose(cos, expect, atol=1e-6)
    assert ctx.n_tokens + 3 * 64 == step.token_count(16, 16)


@pytest.mark.parametrize("H,W", [(15, 16), (16, 13), (1, 16), (0, 0)])
def test_odd_latent_size_raises(H, W):
    step = vanilla(9).steps[0]
    with pytest.raises(ValueError, match="must be even"):
        pack(torch.zeros(1, 2, 9, H, W), step, AVAILABLE)
    with pytest.raises(ValueError, match=f"{H}x{W}"):
        check_latent_size(H, W)


def test_pack_shape_errors():
    step = vanilla(9).steps[-1]
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        pack(torch.zeros(2, 9, 16, 16), step)
    with pytest.raises(ValueError, match="buffer has 5 frames"):
        pack(torch.zeros(1, 2, 5, 16, 16), step)


# ----------------------------------------------------------------------------------- rope
def test_axis_frequencies():
    f = axis_frequencies(8, 256.0)
    assert torch.allclose(f, torch.tensor([1.0, 256 ** -0.25, 256 ** -0.5, 256 ** -0.75]))
    with pytest.raises(ValueError, match="even"):
        axis_frequencies(5, 256.0)


def test_phase_grid_values():
    cos, sin = phase_grid([3.0, 10.0], 4, 5, AXES, 256.0)
    assert cos.shape == sin.shape == (2, 4, 5, 16)
    # channel pair 0 of each axis rotates at frequency 1 by the position on that axis
    t, y, x = 1, 2, 3
    assert math.isclose(cos[t, y, x, 0].item(), math.cos(10.0), abs_tol=1e-6)
    assert math.isclose(sin[t, y, x, 1].item(), math.sin(10.0), abs_tol=1e-6)  # interleaved repeat
    assert math.isclose(cos[t, y, x, 4].item(), math.cos(2.0), abs_tol=1e-6)
    assert math.isclose(sin[t, y, x, 10].item(), math.sin(3.0), abs_tol=1e-6)
    # second t pair: theta ** (-2/4)
    assert math.isclose(cos[t, y, x, 2].item(), math.cos(10.0 * 256 ** -0.5), abs_tol=1e-6)
    assert torch.allclose(cos ** 2 + sin ** 2, torch.ones_like(cos), atol=1e-6)


def test_pooled_phases_ratio_one_is_phase_grid():
    pos = [0, 5, 6, 19]
    cos, sin = pooled_phases(pos, 5, 7, (1, 1, 1), HUNYUAN_AXES)
    gc, gs = phase_grid(pos, 5, 7, HUNYUAN_AXES)
    assert torch.equal(cos, gc.reshape(-1, 128)) and torch.equal(sin, gs.reshape(-1, 128))


def test_average_pool_is_mean_of_cos_not_cos_of_mean():
    pos = [3.0, 11.0]
    cos, sin = pooled_phases(pos, 4, 4, (2, 2, 2), AXES, 256.0)
    assert cos.shape == (4, 16)
    # token 0 covers t in {3, 11}, y in {0, 1}, x in {0, 1}; pair 0 of the t axis, frequency 1
    assert math.isclose(cos[0, 0].item(), (math.cos(3) + math.cos(11)) / 2, abs_tol=1e-6)
    assert math.isclose(sin[0, 0].item(), (math.sin(3) + math.sin(11)) / 2, abs_tol=1e-6)
    assert abs(cos[0, 0].item() - math.cos(7.0)) > 0.1  # not the cosine of the mean angle
    # y axis, token (0, 1, 0) covers y in {2, 3}
    assert math.isclose(cos[2, 4].item(), (math.cos(2) + math.cos(3)) / 2, abs_tol=1e-6)
    # full check against a hand-written mean over every window
    gc, _ = phase_grid(pos, 4, 4, AXES, 256.0)
    manual = gc.reshape(1, 2, 2, 2, 2, 2, 16).mean(dim=(1, 3, 5)).reshape(-1, 16)
    assert torch.allclose(cos, manual, atol=1e-6)


def test_pool_grid_replicate_pads():
    pos = [0.0, 1.0, 2.0]
    gc, _ = phase_grid(pos, 3, 5, AXES)
    pooled = pool_grid(gc, (2, 2, 2))
    assert pooled.shape == (2, 2, 3, 16)
    padded = torch.cat([gc, gc[-1:]], 0)
    padded = torch.cat([padded, padded[:, -1:]], 1)
    padded = torch.cat([padded, padded[:, :, -1:]], 2)
    manual = padded.reshape(2, 2, 2, 2, 3, 2, 16).mean(dim=(1, 3, 5))
    assert torch.allclose(pooled, manual, atol=1e-6)


def test_pool_grid_naive_modes():
    gc, _ = phase_grid([0.0, 1.0, 2.0, 3.0], 4, 4, AXES)
    assert torch.equal(pool_grid(gc, (2, 2, 2), "first"), gc[::2, ::2, ::2])
    assert torch.equal(pool_grid(gc, (2, 2, 2), "center"), gc[1::2, 1::2, 1::2])
    with pytest.raises(ValueError, match="alignment mode"):
        pool_grid(gc, (2, 2, 2), "median")


def test_apply_rope_preserves_pair_norms():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4 * 5 * 6, 16, generator=g)
    cos, sin = phase_grid([0, 7, 8, 30], 5, 6, AXES)
    y = apply_rope(x, cos.reshape(-1, 16), sin.reshape(-1, 16))
    assert y.shape == x.shape
    nx = x.reshape(*x.shape[:-1], 8, 2).norm(dim=-1)
    ny = y.reshape(*y.shape[:-1], 8, 2).norm(dim=-1)
    assert torch.allclose(nx, ny, atol=1e-5)


def test_apply_rope_is_complex_rotation_and_relative():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(1, 1, 1, 16, generator=g)
    k = torch.randn(1, 1, 1, 16, generator=g)
    cos, sin = phase_grid([5.0], 1, 1, AXES)
    y = apply_rope(q, cos.reshape(1, 16), sin.reshape(1, 16))
    zq = torch.view_as_complex(q.reshape(8, 2).contiguous())
    angle = torch.atan2(sin.reshape(16)[::2], cos.reshape(16)[::2])
    expect = torch.view_as_real(zq * torch.polar(torch.ones(8), angle)).reshape(16)
    assert torch.allclose(y.reshape(16), expect, atol=1e-5)

    def score(tq, tk):
        cq, sq = phase_grid([tq], 1, 1, AXES)
        ck, sk = phase_grid([tk], 1, 1, AXES)
        return (apply_rope(q, cq.reshape(1, 16), sq.reshape(1, 16))
                * apply_rope(k, ck.reshape(1, 16), sk.reshape(1, 16))).sum().item()

    assert math.isclose(score(3.0, 10.0), score(13.0, 20.0), rel_tol=1e-4, abs_tol=1e-5)
