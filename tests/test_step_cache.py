"""Step caching (``generate(..., cache=threshold)``, TeaCache's rule): off is the plain path bit for
bit, the rule's arithmetic, skips with a large threshold, seeding, per-section reset, batches,
refusals before any work, and the HunyuanVideo backend through diffusers' FirstBlockCache hook."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from conftest import randomize_zero_init, tiny_config
from framepack_lab import world as W
from framepack_lab.backend import STEP_CACHE
from framepack_lab.generate import generate, generate_many
from framepack_lab.models.autoencoder import TinyAutoencoder
from framepack_lab.models.tiny import TinyBackend, TinyFramePack, TinySection
from framepack_lab.packing import pack
from framepack_lab.plan import make_plan
from framepack_lab.sampler import model_calls, sample, sigmas
from framepack_lab.step_cache import CacheLedger, StepCache, check_cache

FIRST = W.video(W.HELDOUT_SEEDS[0], 1, size=32)[0]  # (32, 32, 3) in [0, 1]
SECOND = W.video(W.HELDOUT_SEEDS[1], 1, size=32)[0]
BIG = 0.9  # a threshold that skips most evaluations of the random-weight model


def run(backend, **kw):
    return generate(backend, kw.pop("first_frame", FIRST), **{"n_frames": 9, "steps": 6, "seed": 0, **kw})


def spy_caches(backend, monkeypatch) -> list[StepCache]:
    """Record the step cache the runner hands ``prepare_section`` for every context."""
    seen, original = [], backend.prepare_section

    def spy(context, step_cache=None):
        seen.append(step_cache)
        return original(context, step_cache=step_cache)
    monkeypatch.setattr(backend, "prepare_section", spy)
    return seen


# ------------------------------------------------------------------------------- off = plain
@pytest.mark.parametrize("off", [None, 0, 0.0])
def test_cache_off_is_the_plain_path_bit_for_bit(backend, off):
    plain, cached = run(backend), run(backend, cache=off)
    assert torch.equal(plain.latents, cached.latents)
    np.testing.assert_array_equal(plain.frames, cached.frames)
    assert "cache" not in cached.info


def test_threshold_zero_computes_every_step_and_matches_the_plain_model(backend):
    """A StepCache at threshold 0 runs the cached code path but never skips: the section comes
    out bit for bit as the plain model makes it, every evaluation counted as computed."""
    plan = make_plan("inverted_anti_drifting", 9)
    step, steps = plan.steps[0], 5
    video = torch.zeros(2, 4, plan.total_frames, 8, 8)
    video[:, :, 0] = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = pack(video, step, backend.kernels)
    noise = torch.randn(2, 4, len(step.generated), 8, 8, generator=torch.Generator().manual_seed(1))
    sched = sigmas(steps, 2.0)

    def section(step_cache):
        ctx = dataclasses.replace(context, prepared=backend.prepare_section(context, step_cache=step_cache))
        return sample(lambda x, s: backend.velocity(x, s, ctx), noise, sched)

    cache = StepCache(0.0, model_calls(steps), batch=2)
    assert torch.equal(section(None), section(cache))
    assert cache.computed.tolist() == [steps, steps] and cache.skipped.tolist() == [0, 0]
    assert all(d.all() for d in cache.decisions)


# --------------------------------------------------------------------------- the rule itself
def test_decisions_follow_the_accumulated_relative_l1():
    """Probes whose relative L1 change per call is exactly 1/16: with threshold 0.1 the
    accumulator reaches 0.125 every second call; first and last calls are always computed."""
    cache = StepCache(0.1, n_calls=6, batch=1)
    probes = [torch.full((1, 3, 2), 16.0 * (17 / 16) ** i) for i in range(6)]  # d_i = 1/16 each
    got = [bool(cache.decide(p)) for p in probes]
    # call: 0 forced, 1 A=1/16 skip, 2 A=1/8 compute, 3 A=1/16 skip, 4 A=1/8 compute, 5 last: forced
    assert got == [True, False, True, False, True, True]
    assert cache.computed.tolist() == [4] and cache.skipped.tolist() == [2] and cache.calls == 6
    assert float(cache.accumulated[0]) == 0.0


def test_relative_l1_is_mean_abs_change_over_mean_abs_previous():
    cache = StepCache(0.5, n_calls=10, batch=2)
    cache.decide(torch.tensor([[2.0, -2.0], [4.0, 4.0]]))
    compute = cache.decide(torch.tensor([[3.0, -2.0], [4.0, 2.0]]))  # d = 0.5/2 = 0.25 and 1/4 = 0.25
    assert compute.tolist() == [False, False]
    assert cache.accumulated.tolist() == pytest.approx([0.25, 0.25], abs=1e-12)
    compute = cache.decide(torch.tensor([[3.0, -2.0], [4.0, 4.0]]))  # d = 0 and 2/3
    assert compute.tolist() == [False, True]
    assert cache.accumulated.tolist() == pytest.approx([0.25, 0.0], abs=1e-12)


def test_run_reuses_the_residual_of_the_last_computed_evaluation_per_row():
    cache = StepCache(0.5, n_calls=10, batch=2)
    calls = []

    def stack(x, rows):
        calls.append(None if rows is None else rows.tolist())
        return 3 * x  # residual 2x

    x0 = torch.tensor([[[1.0]], [[2.0]]])
    assert torch.equal(cache.run(x0, x0, stack), 3 * x0)  # first call: computed for both rows
    x1 = torch.tensor([[[1.5]], [[2.0]]])
    probe1 = torch.tensor([[[10.0]], [[2.0]]])  # row 0 changed 9x (computed), row 1 not (skipped)
    out = cache.run(x1, probe1, stack)
    assert calls == [None, [0]]
    assert out.flatten().tolist() == [4.5, 2.0 + 4.0]  # row 0: 3 * 1.5; row 1: x + its old residual 2 * 2
    assert cache.computed.tolist() == [2, 1] and cache.skipped.tolist() == [0, 1]


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), float("inf"), "0.1", True, [0.1]])
def test_check_cache_refuses_what_is_not_a_threshold(bad):
    with pytest.raises(ValueError, match="cache must be"):
        check_cache(bad)


def test_check_cache_accepts_thresholds_and_none():
    assert check_cache(None) == 0.0 and check_cache(0) == 0.0 and check_cache(0.15) == 0.15
    assert check_cache(np.float32(0.25)) == 0.25


def test_model_calls_counts_what_the_sampler_calls():
    for method, steps in [("euler", 1), ("euler", 7), ("heun", 1), ("heun", 4)]:
        calls = []
        sample(lambda x, s: calls.append(1) or torch.zeros_like(x), torch.zeros(1, 1, 1, 2, 2), sigmas(steps), method)
        assert model_calls(steps, method) == len(calls)
    with pytest.raises(ValueError, match="sampler"):
        model_calls(3, "rk4")


# -------------------------------------------------------------------------------- generation
def test_large_threshold_skips_and_returns_a_finite_video(backend):
    r = run(backend, cache=BIG, n_frames=13, steps=8)
    n_sections = len(r.plan.steps)
    assert r.frames.shape == (13, 32, 32, 3) and np.isfinite(r.frames).all()
    assert torch.isfinite(r.latents).all()
    info = r.info["cache"]
    assert info["threshold"] == BIG
    assert info["computed"] + info["skipped"] == n_sections * 8
    assert info["skipped"] > 0 and info["computed"] >= 2 * n_sections  # first and last of each section
    assert (r.latents - run(backend, n_frames=13, steps=8).latents).abs().max() > 0  # it did change something


def test_seeded_runs_with_the_cache_are_identical(backend):
    a, b = run(backend, cache=0.3, seed=5), run(backend, cache=0.3, seed=5)
    assert torch.equal(a.latents, b.latents) and a.info["cache"] == b.info["cache"]


def test_state_resets_every_section_first_and_last_computed(backend, monkeypatch):
    caches = spy_caches(backend, monkeypatch)
    r = run(backend, cache=BIG, n_frames=13, steps=6)
    assert len(caches) == len(r.plan.steps) >= 3
    assert len({id(c) for c in caches}) == len(caches)  # a fresh cache per section
    for c in caches:
        assert c.calls == 6 and c.decisions[0].all() and c.decisions[-1].all()
    assert sum(int(c.skipped.sum()) for c in caches) == r.info["cache"]["skipped"] > 0


def test_heun_and_history_guidance_count_every_evaluation(backend, monkeypatch):
    r = run(backend, cache=BIG, sampler="heun", steps=3)
    assert sum(r.info["cache"][k] for k in ("computed", "skipped")) == len(r.plan.steps) * model_calls(3, "heun")
    torch.manual_seed(0)  # a random-weight backend with the history features (history guidance)
    hbackend = TinyBackend(randomize_zero_init(TinyFramePack(tiny_config(history_noise=True)), 0).eval(),
                           TinyAutoencoder(4, width=8).eval())
    caches = spy_caches(hbackend, monkeypatch)
    g = run(hbackend, cache=BIG, history_guidance=1.5, steps=4)
    assert len(caches) == 2 * len(g.plan.steps)  # the history-free branch has a cache of its own
    assert sum(g.info["cache"][k] for k in ("computed", "skipped")) == 2 * len(g.plan.steps) * 4


def test_batch_videos_keep_their_own_decisions(backend):
    """Video i of a cached batch is the video its seed makes alone (up to float rounding)."""
    batch = generate_many(backend, [FIRST, SECOND], n_frames=9, steps=6, seeds=[3, 4], cache=0.3)
    for frame, seed, r in zip([FIRST, SECOND], [3, 4], batch):
        alone = run(backend, first_frame=frame, seed=seed, cache=0.3)
        assert r.info["cache"] == alone.info["cache"]
        torch.testing.assert_close(r.latents, alone.latents, atol=1e-5, rtol=1e-5)
    assert batch[0].info["cache"]["skipped"] > 0


# ----------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("bad", [-0.5, 1.0, float("nan"), "fast"])
def test_bad_threshold_refused_before_any_work(backend, monkeypatch, bad):
    monkeypatch.setattr(backend, "encode", lambda *a: pytest.fail("encoded before the check"))
    with pytest.raises(ValueError, match="cache must be"):
        run(backend, cache=bad)
    with pytest.raises(ValueError, match="cache must be"):
        generate_many(backend, [FIRST], n_frames=9, cache=bad)


class NoCacheBackend(TinyBackend):
    """The tiny backend without the step-cache feature (as a third-party backend might be)."""

    @property
    def features(self) -> frozenset[str]:
        return super().features - {STEP_CACHE}


def test_a_backend_without_the_feature_refuses_the_cache(backend, monkeypatch):
    other = NoCacheBackend(backend.model, backend.autoencoder)
    monkeypatch.setattr(other, "encode", lambda *a: pytest.fail("encoded before the check"))
    with pytest.raises(ValueError, match="step_cache"):
        run(other, cache=0.1)
    monkeypatch.undo()
    assert torch.equal(run(other, cache=0).latents, run(backend).latents)  # off asks for nothing


def test_tiny_backend_offers_the_feature_and_prepares_a_section(backend):
    assert STEP_CACHE in backend.features
    context = pack(torch.zeros(1, 4, 5, 8, 8), make_plan("vanilla", 5).steps[0], backend.kernels)
    prepared = backend.prepare_section(context)
    assert isinstance(prepared, TinySection) and prepared.step_cache is None


def test_ledger_reports_per_video():
    ledger = CacheLedger(0.2, n_calls=3, batch=2)
    a, b = StepCache(0.2, 3, 2), StepCache(0.2, 3, 2)
    ledger.caches += [a, b]
    a.record(torch.tensor([True, False]))
    b.record(True)
    assert ledger.report(0) == {"cache": {"threshold": 0.2, "computed": 2, "skipped": 0}}
    assert ledger.report(1) == {"cache": {"threshold": 0.2, "computed": 1, "skipped": 1}}
    assert CacheLedger(0.0, 1, 2).report(0) == {}


# ------------------------------------------------------------------ HunyuanVideo: diffusers' hook
H, WIDTH = 48, 80


@pytest.fixture(scope="module")
def hunyuan():
    pytest.importorskip("diffusers")
    from framepack_lab.models import hunyuan as hy

    backend = hy.tiny_backend(seed=0, vae_tiling=False)
    image = (np.random.default_rng(0).random((H, WIDTH, 3)) * 255).astype(np.uint8)
    cond = backend.condition("a penguin dances in the snow", image, guidance=6.0)
    return backend, image, cond, hy.official_plan("inverted_anti_drifting", 2, window=3)


def test_hunyuan_cache_off_is_plain_and_on_skips_with_the_hook_removed_after(hunyuan, monkeypatch):
    backend, image, cond, plan = hunyuan
    plain = generate(backend, image, plan=plan, steps=6, seed=1, cond=cond)
    assert STEP_CACHE in backend.features
    assert torch.equal(generate(backend, image, plan=plan, steps=6, seed=1, cond=cond, cache=0).latents,
                       plain.latents)
    caches = spy_caches(backend, monkeypatch)
    cached = generate(backend, image, plan=plan, steps=6, seed=1, cond=cond, cache=BIG)
    info = cached.info["cache"]
    assert info["computed"] + info["skipped"] == 2 * 6 and info["skipped"] > 0
    assert torch.isfinite(cached.latents).all() and cached.latents.shape == plain.latents.shape
    assert len(caches) == 2 and all(c.decisions[0].all() and c.decisions[-1].all() for c in caches)
    assert not backend.transformer.is_cache_enabled  # hooks come off after each section
    monkeypatch.undo()
    assert torch.equal(generate(backend, image, plan=plan, steps=6, seed=1, cond=cond).latents, plain.latents)


def test_hunyuan_cache_refuses_a_users_own_diffusers_cache(hunyuan):
    from diffusers.hooks import FirstBlockCacheConfig

    backend, image, cond, plan = hunyuan
    backend.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.2))
    try:
        with pytest.raises(ValueError, match="disable_cache"):
            generate(backend, image, plan=plan, steps=2, seed=1, cond=cond, cache=0.1)
        assert backend.transformer.is_cache_enabled  # the user's cache is left alone
    finally:
        backend.transformer.disable_cache()


def test_hunyuan_threshold_is_the_hooks_threshold(hunyuan):
    from framepack_lab.models.hunyuan.cache import attach, detach

    backend = hunyuan[0]
    attach(backend.transformer, StepCache(0.15, 4, 1))
    try:
        assert math.isclose(backend.transformer._cache_config.threshold, 0.15)
    finally:
        detach(backend.transformer)
    assert not backend.transformer.is_cache_enabled
