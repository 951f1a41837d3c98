"""History noise and history guidance (the paper's Table 2 alternatives to anti-drifting):
seeded, exact where they must be, refused by backends not trained for them."""

import random

import numpy as np
import pytest
import torch
from conftest import randomize_zero_init, tiny_config

from framepack_lab import world as W
from framepack_lab.backend import HISTORY_GUIDANCE, HISTORY_NOISE, STEP_CACHE, Backend
from framepack_lab.generate import DEFAULT_HISTORY_NOISE, generate, generate_many
from framepack_lab.models.autoencoder import TinyAutoencoder
from framepack_lab.models.tiny import TinyBackend, TinyFramePack
from framepack_lab.packing import CLEAN_FRAMES, noise_history, pack
from framepack_lab.plan import make_plan

FIRST = W.video(W.HELDOUT_SEEDS[0], 1, size=32)[0]


@pytest.fixture(scope="module")
def hbackend() -> TinyBackend:
    """A random-weight tiny backend whose config has the history features."""
    torch.manual_seed(0)
    model = randomize_zero_init(TinyFramePack(tiny_config(history_noise=True)), 0)
    return TinyBackend(model.eval(), TinyAutoencoder(4, width=8).eval())


def run(backend, **kw):
    kw = {"n_frames": 9, "steps": 2, "seed": 0, "order": "vanilla", **kw}
    return generate(backend, FIRST, **kw)


def test_backends_meet_the_protocol(backend, hbackend):
    assert isinstance(backend, Backend) and isinstance(hbackend, Backend)
    assert backend.features == {STEP_CACHE}  # every tiny checkpoint can cache steps
    assert hbackend.features == {HISTORY_NOISE, HISTORY_GUIDANCE, STEP_CACHE}


def test_noise_history_keeps_the_first_frame_and_unused_frames_clean():
    video = torch.randn(2, 4, 13, 8, 8)
    step = make_plan("f1", 13, "f1k1_x_f4k2f2k1_g4").steps[2]
    g = torch.Generator().manual_seed(0)
    out = noise_history(video, step, torch.tensor([0.0, 0.5]), g)
    ctx = [f for f in step.context_frames if f not in CLEAN_FRAMES]
    assert 0 in step.context_frames and ctx
    torch.testing.assert_close(out[:, :, 0], video[:, :, 0], atol=0, rtol=0)  # the user's frame
    torch.testing.assert_close(out[0], video[0], atol=0, rtol=0)  # level 0: untouched
    others = sorted(set(range(13)) - set(ctx))
    torch.testing.assert_close(out[:, :, others], video[:, :, others], atol=0, rtol=0)
    # x_sigma = (1 - sigma) x0 + sigma eps, with eps from the generator
    eps = torch.randn(video[:, :, ctx].shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[1, :, ctx], 0.5 * video[1, :, ctx] + 0.5 * eps[1])
    assert noise_history(video, step, 0.0) is video
    # the packed context records the level for the model
    assert pack(video, step, history_noise=0.3, generator=g).history_noise == 0.3


def test_seeded_history_noise_repeats_and_changes_the_video(hbackend):
    a, b = run(hbackend, history_noise=0.3), run(hbackend, history_noise=0.3)
    torch.testing.assert_close(a.latents, b.latents, atol=0, rtol=0)
    clean = run(hbackend, history_noise=0.0)
    assert (a.latents[:, 5:] - clean.latents[:, 5:]).abs().max() > 1e-4
    assert a.info["history_noise"] == 0.3
    assert run(hbackend).info["history_noise"] == DEFAULT_HISTORY_NOISE  # the backend's default


def test_history_guidance_one_is_exactly_the_plain_prediction(hbackend):
    plain, w1 = run(hbackend, history_noise=0.0), run(hbackend, history_noise=0.0, history_guidance=1.0)
    torch.testing.assert_close(plain.latents, w1.latents, atol=0, rtol=0)
    w2 = run(hbackend, history_noise=0.0, history_guidance=2.0)
    assert (w2.latents[:, 1:] - plain.latents[:, 1:]).abs().max() > 1e-4


def test_history_guidance_zero_ignores_the_history(hbackend, monkeypatch):
    seen = []
    real = hbackend.velocity

    def spy(x_t, sigma, context, *a):
        seen.append(len(context.groups))
        return real(x_t, sigma, context, *a)

    monkeypatch.setattr(hbackend, "velocity", spy)
    run(hbackend, history_noise=0.0, history_guidance=0.5, steps=1)
    assert 0 in seen and max(seen) > 0 and len(seen) == 2 * 2  # two calls per step, two sections


def test_batched_generation_matches_single_runs(hbackend):
    firsts = [W.video(s, 1, size=32)[0] for s in W.HELDOUT_SEEDS[:3]]
    many = generate_many(hbackend, firsts, n_frames=9, steps=2, seeds=[5, 6, 7], order="f1", history_noise=0.2)
    for f, s, r in zip(firsts, [5, 6, 7], many):
        one = generate(hbackend, f, n_frames=9, steps=2, seed=s, order="f1", history_noise=0.2)
        torch.testing.assert_close(r.latents, one.latents, atol=1e-4, rtol=1e-4)
        assert r.seed == s


@pytest.mark.parametrize("kw, match", [
    ({"history_noise": 0.2}, "cannot honour history_noise"),
    ({"history_guidance": 1.5}, "cannot honour history_guidance"),
])
def test_backend_without_the_feature_refuses_before_any_work(backend, monkeypatch, kw, match):
    monkeypatch.setattr(backend, "encode", lambda *a: pytest.fail("did work before refusing"))
    with pytest.raises(ValueError, match=match):
        run(backend, **kw)


@pytest.mark.parametrize("kw, match", [
    ({"history_noise": 1.0}, "history_noise must be"),
    ({"history_noise": -0.1}, "history_noise must be"),
    ({"history_noise": "0.1"}, "history_noise must be"),
    ({"history_guidance": float("nan")}, "history_guidance must be"),
    ({"history_guidance": -1.0}, "history_guidance must be"),
])
def test_bad_history_options_are_refused(hbackend, kw, match):
    with pytest.raises(ValueError, match=match):
        run(hbackend, **kw)


def test_generate_many_validates_its_inputs(hbackend):
    with pytest.raises(ValueError, match="one seed per frame"):
        generate_many(hbackend, [FIRST, FIRST], n_frames=5, seeds=[1])
    with pytest.raises(ValueError, match="one size"):
        generate_many(hbackend, [FIRST, np.zeros((64, 64, 3))], n_frames=5)
    with pytest.raises(ValueError, match="empty"):
        generate_many(hbackend, [], n_frames=5)


def test_training_loss_noises_and_drops_history(monkeypatch):
    from framepack_lab.train import sample_task, training_loss

    model = TinyFramePack(tiny_config(history_noise=True))
    bank = torch.randn(2, 4, 40, 8, 8).half()
    seen = []
    real = model.forward

    def spy(x_t, sigma, context, *a):
        seen.append((len(context.groups), torch.as_tensor(context.history_noise).clone()))
        return real(x_t, sigma, context, *a)

    monkeypatch.setattr(model, "forward", spy)
    rng = random.Random(0)
    dc = {"batch": 4, "train_shift": 3.0, "history_noise_prob": 1.0, "history_noise_max": 0.6, "history_dropout": 0.5}
    for i in range(12):
        task = sample_task(rng, 40, dc)
        loss = training_loss(model, bank, task, dc, torch.Generator().manual_seed(i), rng, "cpu")
        assert torch.isfinite(loss)
    levels = torch.cat([lv.reshape(-1) for n, lv in seen if n > 0])
    assert (levels > 0).all() and (levels <= 0.6).all()  # every example noised, within the range
    assert all(float(lv.abs().sum()) == 0 for n, lv in seen if n == 0)  # no history: no level
    n_groups = [n for n, _ in seen]
    assert 0 in n_groups and max(n_groups) > 0  # some batches dropped the history


def test_recycled_history_replaces_only_the_previous_section_with_the_model_estimate():
    from framepack_lab.schedule import PRESETS
    from framepack_lab.train import recycle_history, training_loss, TrainTask

    torch.manual_seed(0)
    model = randomize_zero_init(TinyFramePack(tiny_config(history_noise=True)), 0).eval()
    video = torch.randn(2, 4, 13, 8, 8)
    plan = make_plan("vanilla", 13, PRESETS["temporal_kernel"].schedule)
    prev, step = plan.steps[1], plan.steps[2]
    out = recycle_history(model, video, prev, {"self_history_sigma": (0.5, 0.5)}, torch.Generator().manual_seed(0))
    changed = [f for f in range(13) if not torch.equal(out[:, :, f], video[:, :, f])]
    assert changed == list(prev.generated) and set(prev.generated) <= set(step.context_frames)
    again = recycle_history(model, video, prev, {"self_history_sigma": (0.5, 0.5)}, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded
    # in training: used with probability self_history_prob, never for the first step or true-time orders
    bank = torch.randn(2, 4, 40, 8, 8).half()
    task = TrainTask("vanilla", PRESETS["temporal_kernel"].schedule, plan, step)
    dc = {"batch": 2, "train_shift": 3.0, "history_noise_prob": 0.0, "history_noise_max": 0.5}
    losses = [training_loss(model, bank, task, {**dc, "self_history_prob": p}, torch.Generator().manual_seed(1),
                            random.Random(0), "cpu") for p in (0.0, 1.0)]
    assert torch.isfinite(losses[1]) and losses[0].item() != losses[1].item()
    first = TrainTask("vanilla", task.schedule, plan, plan.steps[0])
    a, b = (training_loss(model, bank, first, {**dc, "self_history_prob": p}, torch.Generator().manual_seed(1),
                          random.Random(0), "cpu") for p in (0.0, 1.0))
    assert a.item() == b.item()  # the first step has no previous section: nothing recycled
    true_time = {**dc, "self_history_prob": 1.0, "true_time_orders": ["vanilla"]}
    c = training_loss(model, bank, task, true_time, torch.Generator().manual_seed(1), random.Random(0), "cpu")
    d = training_loss(model, bank, task, {**true_time, "self_history_prob": 0.0}, torch.Generator().manual_seed(1),
                      random.Random(0), "cpu")
    assert c.item() == d.item()  # true-time orders: nothing recycled


def test_first_step_prob_oversamples_the_first_step():
    from framepack_lab.train import sample_task

    rng = random.Random(0)
    tasks = [sample_task(rng, 97, {"first_step_prob": 1.0}) for _ in range(30)]
    assert all(step is plan.steps[0] for _, _, plan, step in tasks)


def test_phase_settings_switch_the_recipe_at_their_step():
    from framepack_lab.train import phase_settings

    dc = {"history_noise_max": 0.6, "history_noise_prob": 0.8,
          "phases": [{"from_step": 10, "history_noise_max": 0.3}, {"from_step": 20, "history_noise_prob": 0.5}]}
    assert phase_settings(dc, 9) is dc
    assert phase_settings(dc, 10)["history_noise_max"] == 0.3 and phase_settings(dc, 10)["history_noise_prob"] == 0.8
    late = phase_settings(dc, 25)
    assert (late["history_noise_max"], late["history_noise_prob"]) == (0.3, 0.5)
    assert phase_settings({"lr": 1.0}, 5) == {"lr": 1.0}


def test_motion_map_marks_what_moves_and_averages_one():
    from framepack_lab.train import motion_map

    x0 = torch.zeros(2, 4, 4, 8, 8)
    for t in range(4):
        x0[0, :, t, 2, t] = 1.0  # a dot moving right in example 0
    x0[1] = torch.randn(4, 1, 8, 8)  # example 1 is static... but for its noise
    x0[1, :, :, 0, 0] += torch.arange(4.0)  # one pixel changes
    m = motion_map(x0)
    assert m.shape == (2, 1, 4, 8, 8)
    torch.testing.assert_close(m.mean(dim=(2, 3, 4)), torch.ones(2, 1))
    assert m[0, 0, 1, 2, 1] > 1 and m[0, 0, 1, 5, 5] == 0  # the moving dot vs a still pixel
    assert torch.equal(motion_map(x0[:, :, :1]), torch.ones(2, 1, 1, 8, 8))


def test_motion_weight_orders_limit_the_motion_weight_to_the_named_orders():
    from framepack_lab.schedule import PRESETS
    from framepack_lab.train import TrainTask, training_loss

    torch.manual_seed(0)
    model = randomize_zero_init(TinyFramePack(tiny_config(history_noise=True)), 0).eval()
    bank = torch.randn(2, 4, 40, 8, 8).half()
    plan = make_plan("vanilla", 13, PRESETS["temporal_kernel"].schedule)
    task = TrainTask("vanilla", PRESETS["temporal_kernel"].schedule, plan, plan.steps[1])
    dc = {"batch": 2, "train_shift": 3.0, "history_noise_prob": 0.0, "history_noise_max": 0.5}

    def loss(**extra):
        return training_loss(model, bank, task, {**dc, **extra}, torch.Generator().manual_seed(1),
                             random.Random(0), "cpu").item()

    plain, weighted = loss(), loss(motion_weight=3.0)
    assert plain != weighted
    assert loss(motion_weight=3.0, motion_weight_orders=["vanilla"]) == weighted
    assert loss(motion_weight=3.0, motion_weight_orders=["inverted_anti_drifting"]) == plain
