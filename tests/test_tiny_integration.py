"""Integration: the shipped tiny FramePack loads offline and really generates."""

import math
import time

import numpy as np
import pytest
import torch

from framepack_lab import metrics, world
from framepack_lab.generate import generate
from framepack_lab.models.tiny import ASSETS, load_tiny
from framepack_lab.plan import ORDERS

SEEDS = list(world.HELDOUT_SEEDS)[:4]
N_WORLDS = 12  # the every-frame presence test's worlds
# The every-frame presence test samples at 10 steps, half the default 20, to halve its cost; on its
# worlds the figures barely depend on the step count (measured: README, "Tests").
PRESENCE_TEST_STEPS = 10


@pytest.fixture(scope="module")
def backend():
    return load_tiny()


def test_shipped_checkpoint_is_small_and_loads_fast():
    size = sum(f.stat().st_size for f in (ASSETS / "tiny").iterdir())
    assert size <= 30 * 2**20
    t0 = time.perf_counter()
    load_tiny()
    assert time.perf_counter() - t0 < 2.0


def test_training_record_is_shipped():
    import json

    cfg = json.loads((ASSETS / "tiny" / "config.json").read_text())
    rec = cfg["training_record"]
    assert rec["steps"] > 0 and rec["dit_seconds"] > 0
    assert rec["autoencoder"]["heldout_psnr_db"] > 28


def test_autoencoder_reconstructs_held_out_frames(backend):
    frames = torch.from_numpy(world.video(SEEDS[0], 8))[None]
    rec = backend.decode(backend.encode(frames))
    mse = float(((rec - frames) ** 2).mean())
    assert 10 * math.log10(1 / mse) > 28


@pytest.mark.slow
@pytest.mark.parametrize("order", ORDERS)
def test_every_order_keeps_its_sprites_in_every_frame(backend, order):
    from framepack_lab.evaluate import heldout_seeds, run_order, score_videos

    # 64-frame videos of 12 held-out worlds, default settings but the steps, one batch. Not the
    # worlds `evaluate` reports on. 12, not 6: one world that loses a sprite early moves a 6-world
    # presence by 0.1 (vanilla, with an earlier checkpoint: 0.76 on worlds 200-205 against 0.91 on
    # 206-223).
    seeds = heldout_seeds(N_WORLDS, offset=200)
    v, _ = run_order(backend, order, seeds, n_frames=64, steps=PRESENCE_TEST_STEPS)
    assert len(v) == N_WORLDS and all(x.shape == (64, 64, 64, 3) and np.isfinite(x).all() for x in v)
    r = score_videos(v, seeds)
    # First-frame sprites found over all 64 frames and at the worst frame, not only the last. The
    # targets (presence >= 0.9, worst >= 0.8, motion 0.5-1.5) are measured on 16 held-out worlds by
    # `python -m framepack_lab.evaluate` and reported in the README, misses included; these floors
    # are what every order holds on 12 other worlds with margin for their sampling spread.
    assert r["presence"] >= 0.8, r
    assert r["worst"] >= 0.6, r
    assert 0.3 <= r["motion"] <= 1.6, r  # sprites keep moving


@pytest.mark.parametrize("order", ORDERS)
def test_every_order_generates_a_clean_video(backend, order):
    first = world.video(SEEDS[1], 1)[0]
    r = generate(backend, first, n_frames=17, order=order, steps=8, seed=1)
    assert r.frames.shape == (17, 64, 64, 3)
    assert np.isfinite(r.frames).all()
    assert not r.stopped and r.known == list(range(17))
    # the video keeps the look of its first frame: no collapse to noise or grey
    assert metrics.colour_drift(r.frames).max() < 0.5
    assert metrics.clarity(r.frames[1:]).mean() > 0.2 * metrics.clarity(r.frames[:1]).mean()


def test_same_seed_same_video(backend):
    first = world.video(SEEDS[2], 1)[0]
    a = generate(backend, first, n_frames=9, steps=4, seed=3).frames
    b = generate(backend, first, n_frames=9, steps=4, seed=3).frames
    c = generate(backend, first, n_frames=9, steps=4, seed=4).frames
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_sprites_survive_with_the_default_order(backend):
    found = []
    for s in SEEDS:
        r = generate(backend, world.video(s, 1)[0], n_frames=17, steps=12, seed=0)
        v = metrics.sprite_survival(r.frames, 16)
        if not math.isnan(v):
            found.append(v)
    assert found and np.mean(found) >= 0.6
