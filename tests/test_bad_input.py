"""Bad input is refused with a clear error before any work: no hang, nothing silently ignored.

Each case is a call, the exception it must raise and a regex of its message (which says what was
wrong and what to do). Generation cases run with a backend whose ``encode`` and ``velocity`` fail
the test, so a refusal that comes after work has started is caught; every case must also finish
in seconds (the first of them used to run for more than ten minutes).
"""

import time

import numpy as np
import pytest
import torch

from framepack_lab import runtime
from framepack_lab import world as W
from framepack_lab.generate import DEFAULT_N_FRAMES, DEFAULT_ORDER, MAX_STEP_FRAMES, generate, generate_many
from framepack_lab.models.tiny import load_tiny
from framepack_lab.plan import make_plan
from framepack_lab.schedule import MAX_FRAMES, MAX_KERNEL_SIZE, parse

FIRST = W.video(W.HELDOUT_SEEDS[0], 1, size=32)[0]  # (32, 32, 3): 8x8 latents, 16 tokens per frame


def with_value(value, at=(3, 4, 1)):
    frame = FIRST.copy()
    frame[at] = value
    return frame


def gen(**kw):
    """A generate call for the table: ``lambda backend: generate(backend, FIRST, steps=1, **kw)``."""
    first = kw.pop("first_frame", FIRST)
    return lambda backend: generate(backend, first, steps=1, **kw)


F1_9 = make_plan("f1", 9)  # the default schedule, sections of 4
DISCRETE = "td_f16k4f4k2f1k1_g4+D"

CASES = [
    # ---- schedules that cannot fit the video or a sane token budget (used to hang the kernel)
    ("section of 100000 frames", gen(n_frames=9, schedule="td_f1k1_g100000"),
     ValueError, r"'g100000'.*larger than the grammar accepts.*at most 1024 frames"),
    ("section longer than the video", gen(n_frames=9, schedule="td_f1k1_g1000"),
     ValueError, r"generates 1000 frames per section.*only 8 frame\(s\) to generate.*at most 8 frames"),
    ("section longer than a given plan's video", gen(plan=make_plan("vanilla", 5, "td_f1k1_g8")),
     ValueError, r"generates 8 frames per section.*n_frames=5"),
    ("step over the token budget", gen(n_frames=200, order="vanilla", schedule="td_f1000k1_g4"),
     ValueError, rf"packs \d+ tokens.*over the budget of {MAX_STEP_FRAMES} frames' worth \({MAX_STEP_FRAMES * 16} tokens"),
    ("block over the grammar's frame cap", gen(n_frames=9, schedule="td_f2000k1_g4"),
     ValueError, r"f2000k1.*at most 1024 frames per block"),
    ("kernel over the grammar's size cap", gen(n_frames=9, schedule="td_f1k64_g4"),
     ValueError, r"k64: N must be at most 32"),
    ("spelled-out kernel over the cap", gen(n_frames=9, schedule="td_f1k1h128w2_g4"),
     ValueError, r"ph=128 is larger than 64"),
    ("a 5000-digit number", gen(n_frames=9, schedule="f1k1_g" + "9" * 5000),
     ValueError, r"larger than the grammar accepts"),
    # ---- the first frame
    ("NaN in the first frame", gen(n_frames=9, first_frame=with_value(np.nan)),
     ValueError, r"first_frame has 1 NaN or infinite value"),
    ("inf in the first frame", gen(n_frames=9, first_frame=with_value(np.inf)),
     ValueError, r"first_frame has 1 NaN or infinite value"),
    ("-inf in a torch first frame", gen(n_frames=9, first_frame=torch.from_numpy(with_value(-np.inf))),
     ValueError, r"NaN or infinite"),
    ("an empty first frame", gen(n_frames=9, first_frame=np.zeros((0, 0, 3), np.float32)),
     ValueError, r"\(H, W, 3\) RGB image"),
    ("a first frame of strings", gen(n_frames=9, first_frame=np.array([[["a", "b", "c"]]])),
     ValueError, r"first_frame must be an \(H, W, 3\) RGB image"),
    # ---- discrete history on a checkpoint without codebooks
    ("+D schedule", gen(n_frames=9, order="vanilla", schedule=DISCRETE),
     ValueError, r"cannot honour discrete_history"),
    ("+D plan", gen(plan=make_plan("vanilla", 9, DISCRETE)),
     ValueError, r"cannot honour discrete_history"),
    # ---- a plan and arguments that contradict it
    ("plan and another order", gen(plan=F1_9, order="vanilla"),
     ValueError, r"plan= and order='vanilla' \(the plan's order is 'f1'\).*either a plan or"),
    ("plan and another length", gen(plan=F1_9, n_frames=13),
     ValueError, r"n_frames=13 \(the plan has 9\)"),
    ("plan and another schedule", gen(plan=F1_9, schedule="td_f16k4f4k2f1k1_g4"),
     ValueError, r"schedule='td_f16k4f4k2f1k1_g4' \(the plan's schedule is 'f1k1_x_f16k4f4k2f2k1_g4'\)"),
    ("plan and all three", gen(plan=F1_9, order="vanilla", n_frames=64, schedule="official_vanilla"),
     ValueError, r"order=.*n_frames=64.*schedule='official_vanilla'"),
    ("not a plan", gen(plan="f1"), ValueError, r"plan must be a framepack_lab.plan.Plan"),
    ("batched: plan and another order",
     lambda b: generate_many(b, [FIRST, FIRST], plan=F1_9, order="anti_drifting", steps=1),
     ValueError, r"order='anti_drifting'"),
    ("batched: section longer than the video",
     lambda b: generate_many(b, [FIRST], n_frames=3, schedule="td_f1k1_g4", steps=1),
     ValueError, r"generates 4 frames per section"),
    # ---- world seeds
    ("negative world seed", lambda b: W.make_world(-1),
     ValueError, r"world seed must be a non-negative integer, got -1.*TRAIN_SEEDS \(0 \.\. 999,999\).*HELDOUT_SEEDS"),
    ("negative seed of a video", lambda b: W.video(-1, 4),
     ValueError, r"non-negative integer, got -1.*HELDOUT_SEEDS\[0\]"),
    ("fractional world seed", lambda b: W.make_world(1.5), ValueError, r"got 1\.5"),
    ("a video of no frames", lambda b: W.video(3, 0), ValueError, r"n_frames must be a positive integer"),
    # ---- devices
    ("unknown device", lambda b: load_tiny(device="banana"),
     ValueError, r"unknown device 'banana': use 'cpu', 'cuda' \(or 'cuda:N'\), 'mps' or 'auto'"),
    ("a device type models cannot run on", lambda b: runtime.resolve_device("meta"),
     ValueError, r"models cannot run on device type 'meta'.*device='cpu' or device='auto'"),
    ("device type a backend does not support", lambda b: runtime.resolve_device("mps", allowed=("cuda", "cpu")),
     ValueError, r"'mps' is not supported here: use one of 'cuda', 'cpu' or 'auto'"),
    # ---- frame sizes
    ("frame size off the latent grid", lambda b: runtime.latent_size(36, 64, 4, "the tiny model"),
     ValueError, r"frame size 36x64: the tiny model needs .* multiples of 8 pixels.*e\.g\. 64x64"),
]

if not torch.backends.mps.is_available():
    CASES.append(("mps on a torch without MPS", lambda b: load_tiny(device="mps"),
                  ValueError, r"device 'mps' was asked for but .*no MPS.*use device='cpu' or device='auto'"))
if not torch.cuda.is_available():
    CASES.append(("cuda on a machine without CUDA", lambda b: load_tiny(device="cuda:0"),
                  ValueError, r"device 'cuda:0' was asked for but this machine has no CUDA GPU.*device='auto'"))


@pytest.fixture
def idle_backend(backend, monkeypatch):
    """The random-weight backend, with the calls that do work failing the test."""
    def work(*args, **kwargs):
        pytest.fail("work started (encode/velocity called) before the bad input was refused")
    monkeypatch.setattr(backend, "encode", work)
    monkeypatch.setattr(backend, "velocity", work)
    return backend


# every refusal also says what to do instead
ADVICE = ("use ", "give ", "drop ", "leave ", "ask for", "split ", "resize ", "check ", "e.g. ", "choose ")


@pytest.mark.parametrize("call,exception,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_work(idle_backend, call, exception, message):
    t0 = time.perf_counter()
    with pytest.raises(exception, match=message) as e:
        call(idle_backend)
    assert time.perf_counter() - t0 < 10, "refusing bad input must be immediate"
    assert any(word in str(e.value) for word in ADVICE), f"the message does not say what to do: {e.value}"


# ------------------------------------------------------------------- valid inputs still work
def test_defaults_without_a_plan():
    from framepack_lab.generate import _resolve_plan

    plan = _resolve_plan(None, None, None, None)
    assert plan.order == DEFAULT_ORDER and plan.n_frames == DEFAULT_N_FRAMES


def test_a_plan_with_agreeing_arguments_runs(backend):
    r = generate(backend, FIRST, plan=F1_9, order="f1", n_frames=9, schedule=F1_9.schedule.name, steps=1)
    assert r.plan is F1_9 and r.frames.shape == (9, 32, 32, 3)


def test_a_section_as_long_as_the_video_runs(backend):
    r = generate(backend, FIRST, n_frames=5, order="vanilla", schedule="td_f1k1_g4", steps=1)
    assert len(r.plan.steps) == 1 and r.frames.shape == (5, 32, 32, 3)


def test_caps_accept_their_limits():
    s = parse(f"td_f{MAX_FRAMES}k{MAX_KERNEL_SIZE // 2}f1k1h{MAX_KERNEL_SIZE}w2_g{MAX_FRAMES}")
    assert s.generated == MAX_FRAMES and s.left.near[0].kernel.pf == MAX_KERNEL_SIZE // 2


def test_first_frame_with_finite_extremes_is_accepted(backend):
    frame = FIRST.copy()
    frame[0, 0] = [0.0, 1.0, 0.5]
    r = generate(backend, frame, n_frames=5, steps=1)
    assert np.isfinite(r.frames).all()


def test_world_seeds_accept_numpy_integers():
    assert W.make_world(np.int64(7)) == W.make_world(7)
    assert W.make_world(0).seed == 0


def test_auto_device_is_cuda_when_available_else_cpu():
    assert runtime.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert runtime.resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert load_tiny(device="auto").device == runtime.resolve_device("auto")


def test_latent_size_of_valid_frames():
    assert runtime.latent_size(64, 48, 4, "the tiny model") == (16, 12)
    assert runtime.latent_size(np.int64(480), 640, 8, "HunyuanVideo", "VAE", "480x640") == (60, 80)


def test_auto_respects_the_devices_a_model_supports():
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    assert runtime.resolve_device("auto", allowed=("cuda", "cpu")).type == "cpu"
    with pytest.raises(ValueError, match="'cpu' is not supported here: use one of 'cuda'"):
        runtime.resolve_device("auto", allowed=("cuda",))
