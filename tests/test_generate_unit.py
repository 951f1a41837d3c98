"""generate() with a random-weight tiny backend on 32x32 frames: shapes, seeding, orders, the
per-section callback, the stop hook, trimming, and input validation."""

import numpy as np
import pytest
import torch

from framepack_lab import world as W
from framepack_lab.generate import DEFAULT_ORDER, GenerationResult, SectionEvent, generate
from framepack_lab.plan import ORDERS, make_plan

FIRST = W.video(W.HELDOUT_SEEDS[0], 1, size=32)[0]  # (32, 32, 3) float in [0, 1]


def run(backend, **kw):
    defaults = {"steps": 2, "seed": 0} if "plan" in kw else {"n_frames": 9, "steps": 2, "seed": 0}
    kw = {**defaults, **kw}  # a plan brings its own n_frames (generate refuses a conflicting one)
    return generate(backend, kw.pop("first_frame", FIRST), **kw)


def test_result_shapes_and_range(backend):
    r = run(backend)
    assert isinstance(r, GenerationResult)
    assert r.frames.shape == (9, 32, 32, 3) and r.frames.dtype == np.float32
    assert r.frames.min() >= 0 and r.frames.max() <= 1
    assert r.latents.shape == (4, 9, 8, 8)
    assert r.plan.order == DEFAULT_ORDER and r.seed == 0 and not r.stopped
    assert r.known == list(range(9))
    assert len(r.section_seconds) == len(r.plan.steps) == 2 and r.seconds >= 0
    # frame 0 is the encoded first frame, untouched by sampling
    torch.testing.assert_close(r.latents[:, 0], backend.encode(torch.from_numpy(FIRST)[None, None])[0, :, 0])


def test_same_seed_same_video_different_seed_different(backend):
    a, b, c = run(backend, seed=3), run(backend, seed=3), run(backend, seed=4)
    np.testing.assert_array_equal(a.frames, b.frames)
    torch.testing.assert_close(a.latents, b.latents, atol=0, rtol=0)
    assert (a.latents[:, 1:] - c.latents[:, 1:]).abs().max() > 1e-3


@pytest.mark.parametrize("order", ORDERS)
def test_every_order_runs(backend, order):
    r = run(backend, order=order, n_frames=13, steps=1)
    assert r.plan.order == order and r.frames.shape == (13, 32, 32, 3)
    assert torch.isfinite(r.latents).all()
    assert r.known == list(range(13))


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_samplers_and_fixed_shift(backend, sampler):
    r = run(backend, sampler=sampler, shift=2.0)
    assert r.info == {"steps": 2, "sampler": sampler, "shift": 2.0, "history_noise": 0.0, "history_guidance": 1.0}


@pytest.mark.parametrize("order", ["vanilla", "inverted_anti_drifting"])
def test_callback_gets_one_event_per_step_in_plan_order(backend, order):
    events: list[SectionEvent] = []
    r = run(backend, order=order, n_frames=13, callback=events.append)
    plan = r.plan
    assert [e.index for e in events] == list(range(len(plan.steps)))
    assert [e.step for e in events] == list(plan.steps)
    assert all(e.n_steps == len(plan.steps) for e in events)
    known = {0}
    for e in events:
        assert set(e.known) > known  # grows with every section
        known |= set(e.step.generated)
        assert e.known == sorted(known)
        assert e.section_frames().shape == (len(e.step.generated), 32, 32, 3)
        preview = e.preview()
        assert preview.shape == (plan.total_frames, 32, 32, 3)
        unknown = [f for f in range(plan.total_frames) if f not in known]
        assert np.all(preview[unknown] == 0.5)
        assert not np.all(preview[sorted(known)] == 0.5)
    # the last event's preview is the finished video
    np.testing.assert_allclose(events[-1].preview(), r.frames, atol=1e-6)


def test_event_latents_hold_zeros_for_unknown_frames_during_the_callback(backend):
    checked = []

    def cb(e: SectionEvent):
        unknown = [f for f in range(e.latents.shape[2]) if f not in e.known]
        assert e.latents.shape[:2] == (1, 4)
        assert torch.count_nonzero(e.latents[:, :, unknown]) == 0
        assert torch.count_nonzero(e.latents[:, :, list(e.step.generated)]) > 0
        checked.append(e.index)

    r = run(backend, order="anti_drifting", n_frames=13, callback=cb)
    assert checked == list(range(len(r.plan.steps)))


def test_stop_after_two_sections(backend):
    done = []
    r = run(backend, order="vanilla", n_frames=17, callback=done.append, stop=lambda: len(done) >= 2)
    assert r.stopped
    assert len(r.section_seconds) == 2 and len(done) == 2
    plan = make_plan("vanilla", 17)
    expected = sorted({0, *plan.steps[0].generated, *plan.steps[1].generated})
    assert r.known == expected
    unknown = [f for f in range(17) if f not in expected]
    assert unknown and np.all(r.frames[unknown] == 0.5)
    assert not np.all(r.frames[expected] == 0.5)
    assert r.frames.shape == (17, 32, 32, 3)


def test_stop_before_anything(backend):
    r = run(backend, stop=lambda: True)
    assert r.stopped and r.section_seconds == [] and r.known == [0]
    assert np.all(r.frames[1:] == 0.5)


def test_n_frames_not_a_multiple_of_the_section_is_trimmed(backend):
    r = run(backend, order="vanilla", n_frames=10)  # sections of 4: 1 + 3 * 4 = 13 frames generated
    assert r.plan.total_frames == 13
    assert r.frames.shape == (10, 32, 32, 3) and r.latents.shape == (4, 10, 8, 8)
    assert r.known == list(range(10))


def test_first_frame_as_uint8_is_the_same_as_float(backend):
    u8 = (FIRST * 255).round().astype(np.uint8)
    a = run(backend, first_frame=u8)
    b = run(backend, first_frame=u8.astype(np.float32) / 255)
    assert a.frames.shape == (9, 32, 32, 3)
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-6)


def test_first_frame_as_torch_tensor(backend):
    r = run(backend, first_frame=torch.from_numpy(FIRST))
    np.testing.assert_allclose(r.frames, run(backend).frames, atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((32, 32)), np.zeros((32, 32, 4)), np.zeros((1, 32, 32, 3))])
def test_bad_first_frame_shape(backend, bad):
    with pytest.raises(ValueError, match="first_frame"):
        run(backend, first_frame=bad)


@pytest.mark.parametrize("bad", [FIRST * 2 + 0.1, FIRST - 0.5, FIRST * 255])
def test_bad_first_frame_range(backend, bad):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        run(backend, first_frame=bad)


def test_bad_frame_size_and_order(backend):
    with pytest.raises(ValueError, match="36x36"):
        run(backend, first_frame=np.zeros((36, 36, 3), np.float32))
    with pytest.raises(ValueError, match="sideways"):
        run(backend, order="sideways")
    with pytest.raises(ValueError):
        run(backend, n_frames=1)


def test_explicit_plan_and_schedule(backend):
    plan = make_plan("f1", 7, "f1k1_x_f16k4f4k2f2k1_g2")
    r = run(backend, plan=plan)
    assert r.plan is plan and len(r.section_seconds) == 3 and r.frames.shape == (7, 32, 32, 3)
    r2 = run(backend, order="vanilla", n_frames=7, schedule="td_f16k4f4k2f1k1_g3")
    assert r2.plan.schedule.generated == 3 and r2.frames.shape == (7, 32, 32, 3)
