"""See what the model sees: the packed context decoded at its kernel, and the section's x0 trace."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from framepack_lab import world
from framepack_lab.generate import generate
from framepack_lab.packing import pack
from framepack_lab.plan import make_plan
from framepack_lab.sampler import dynamic_shift, sample, sigmas
from framepack_lab.schedule import BASE
from framepack_lab.viz import context_as_seen, denoise_trace, model_view

# k1, k2 and k4 blocks, and frames enough that the k4 block holds a whole slab and a partial one
SCHEDULE = "td_f6k4f2k2f1k1_g2"


@pytest.fixture(scope="module")
def run(backend):
    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    return generate(backend, first, n_frames=15, order="vanilla", schedule=SCHEDULE, steps=2, seed=5)


def test_one_decoded_image_per_context_frame(backend, run):
    for step in run.plan.steps:
        seen = context_as_seen(backend, run, step.index, history_noise=0)
        assert [s.frame for s in seen] == list(step.context_frames)
        for s in seen:
            assert s.image.shape == (64, 64, 3) and s.image.dtype == np.float32
            assert 0 <= s.image.min() and s.image.max() <= 1


def test_pooled_frames_are_piecewise_constant_block_means_at_their_kernel(backend, run):
    step = run.plan.steps[-1]  # every block filled: frames 0-5 at k4, 6-11... in time order
    seen = context_as_seen(backend, run, step, history_noise=0)
    kernels = {s.kernel.name for s in seen}
    assert kernels == {"k1", "k2", "k4"}
    video = run.latents  # (C, T, h, w)
    for s in seen:
        pf, rh, rw = s.kernel.ratio  # k2: (2, 2, 2), k4: (4, 4, 4)
        lat = s.latent  # (C, h, w)
        # constant on every (rh, rw) block ...
        blocks = lat.reshape(lat.shape[0], 16 // rh, rh, 16 // rw, rw)
        assert torch.equal(blocks, blocks[:, :, :1, :, :1].expand_as(blocks))
        # ... and that constant is the mean of the real latents over the block, the slab's frames
        # replicate-padded up to pf (the packer's padding)
        frames = list(s.slab) + [s.slab[-1]] * (pf - len(s.slab))
        expected = F.avg_pool3d(video[:, frames][None], (pf, rh, rw))[0, :, 0]
        torch.testing.assert_close(blocks[:, :, 0, :, 0], expected, rtol=0, atol=1e-6)
        assert s.token_grid == (16 // s.kernel.ph, 16 // s.kernel.pw)
    by_slab = {}
    for s in seen:  # frames packed into the same tokens look alike
        by_slab.setdefault(s.slab, []).append(s.latent)
    assert any(len(v) > 1 for v in by_slab.values())
    for v in by_slab.values():
        assert all(torch.equal(v[0], x) for x in v)
    k1 = [s for s in seen if s.kernel.name == "k1"]
    assert k1 and all(torch.equal(s.latent, video[:, s.frame]) for s in k1)  # k1: the latent itself


def test_token_counts_match_the_plan(backend, run):
    step = run.plan.steps[-1]
    seen = context_as_seen(backend, run, step, history_noise=0)
    slabs = {s.slab: s.slab_tokens for s in seen}
    context_tokens = sum(n for _, n in step.token_breakdown(16, 16)[1:])
    assert sum(slabs.values()) == context_tokens


def test_last_x0_is_what_sample_returns_for_the_same_noise(backend, run):
    step = run.plan.steps[2]
    trace = denoise_trace(backend, run, step.index, steps=4, seed=11, history_noise=0)
    assert trace.x0.shape == (4, backend.latent_channels, 2, 16, 16)
    context = pack(run.latents[None], step, backend.kernels)
    context.prepared = backend.prepare_section(context)
    sched = sigmas(4, dynamic_shift(BASE.tokens(2, 16, 16)))
    direct = sample(lambda x, s: backend.velocity(x, s, context), trace.noise, sched)[0]
    torch.testing.assert_close(trace.x0[-1], direct, rtol=0, atol=1e-6)
    torch.testing.assert_close(trace.section, direct, rtol=0, atol=0)
    assert not torch.allclose(trace.x0[0], trace.x0[-1])  # the estimate does change along the way
    frames = trace.frames([0, 3])
    assert frames.shape == (2, 2, 64, 64, 3)


def test_step_zero_with_the_runs_seed_is_the_runs_first_section(backend, run):
    step = run.plan.steps[0]
    trace = denoise_trace(backend, run, 0, steps=2, seed=run.seed)
    torch.testing.assert_close(trace.section, run.latents[:, list(step.generated)], rtol=0, atol=1e-6)


def test_heun_records_one_estimate_per_sampler_step(backend, run):
    trace = denoise_trace(backend, run, 1, steps=3, sampler="heun", history_noise=0)
    assert trace.x0.shape[0] == 3
    torch.testing.assert_close(trace.x0[-1], trace.section, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", [-1, 7, 99, 1.5, True, "2"])
def test_bad_step_index_is_refused_before_any_work(backend, run, bad):
    n = len(run.plan.steps)
    assert n == 7
    for call in (lambda: context_as_seen(backend, run, bad), lambda: denoise_trace(backend, run, bad),
                 lambda: model_view(backend, run, bad)):
        with pytest.raises(ValueError, match=f"step index .* has {n} steps, indices 0 to {n - 1}"):
            call()


def test_bare_latents_need_a_plan_for_an_index(backend, run):
    with pytest.raises(ValueError, match="no plan was given"):
        context_as_seen(backend, run.latents, 1)
    seen = context_as_seen(backend, run.latents, 1, plan=run.plan, history_noise=0)
    assert [s.frame for s in seen] == list(run.plan.steps[1].context_frames)
    with pytest.raises(ValueError, match="expected a GenerationResult or video latents"):
        context_as_seen(backend, run.latents[0], 1, plan=run.plan)


def test_tail_frames_are_one_latent_pixel(backend):
    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    r = generate(backend, first, n_frames=11, order="vanilla", schedule="ta_f1k1_g2", steps=1)
    step = r.plan.steps[-1]
    seen = context_as_seen(backend, r, step, history_noise=0)
    tails = [s for s in seen if s.tail == "ta"]
    assert len(tails) == len(step.context_frames) - 1 > 0
    for s in tails:
        assert s.token_grid == (1, 1) and s.slab_tokens == 1
        torch.testing.assert_close(s.latent, r.latents[:, s.frame].mean(dim=(1, 2))[:, None, None].expand(-1, 16, 16))


def test_model_view_draws_context_slabs_and_denoising_rows(backend, run):
    import matplotlib.pyplot as plt

    step = run.plan.steps[-1]
    fig = model_view(backend, run, step.index, steps=4, shown=3, history_noise=0)
    seen = context_as_seen(backend, run, step, history_noise=0)
    n_slabs = len({s.slab for s in seen})
    images = [ax for ax in fig.get_axes() if ax.get_images()]
    assert len(images) == n_slabs + 2 * (3 + 1)  # the slabs, then S rows of (noise + 3 estimates)
    titles = " ".join(ax.get_title() for ax in fig.get_axes())
    assert "k4 (4,8,8) 64x" in titles and "x0 at step 4/4" in titles and "input noise" in titles
    plt.close(fig)
    with pytest.raises(ValueError, match="shown must be"):
        model_view(backend, run, 0, shown=1)


def test_shown_steps_are_evenly_spaced_and_end_at_the_last():
    from framepack_lab.viz.model_view import _shown_steps

    assert _shown_steps(20, 5) == [0, 5, 10, 14, 19]
    assert _shown_steps(4, 5) == [0, 1, 2, 3]  # fewer sampler steps than columns: every one
    assert _shown_steps(1, 5) == [0]


def test_discrete_history_is_shown_snapped_to_the_codebook_as_generate_packs_it(backend, run):
    import dataclasses

    plan = make_plan("vanilla", 15, "td_f2k1_g2+D4")
    with pytest.raises(ValueError, match="codebook"):  # the fixture has none: refused, as generate does
        context_as_seen(backend, run.latents, 2, plan=plan)
    codebook = torch.randn(4, backend.latent_channels, generator=torch.Generator().manual_seed(0))
    with_codebook = dataclasses.replace(backend, codebooks={4: codebook})
    seen = context_as_seen(with_codebook, run.latents, 2, plan=plan, history_noise=0)
    assert [s.frame for s in seen] == list(plan.steps[2].context_frames)
    for s in seen:
        pixels = s.latent.flatten(1).T  # (h*w, C): every latent pixel is a centroid (frame 0 stays real)
        is_centroid = (pixels[:, None] - codebook[None]).abs().amax(-1).min(-1).values < 1e-6
        assert bool(is_centroid.all()) == (s.frame != 0)
    trace = denoise_trace(with_codebook, run.latents, 2, plan=plan, steps=2, history_noise=0)
    assert trace.x0.shape[0] == 2


def test_frames_trimmed_from_the_result_are_flagged(backend):
    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    r = generate(backend, first, n_frames=14, order="inverted_anti_drifting", schedule="f1k1_x_g4_f2k1f4k2f16k4_td",
                 steps=1)
    assert r.plan.total_frames == 17 and r.latents.shape[1] == 14  # the first section ran past the end
    seen = context_as_seen(backend, r, 1, history_noise=0)
    flagged = {s.frame for s in seen if not s.complete}
    assert flagged and all(max(s.slab) >= 14 for s in seen if not s.complete)
    assert all(max(s.slab) < 14 for s in seen if s.complete)
    import matplotlib.pyplot as plt

    fig = model_view(backend, r, 1, steps=1, history_noise=0)
    assert "lies past the 14-frame result" in fig._suptitle.get_text()
    plt.close(fig)
