"""Procedural worlds: determinism, direct rendering, seed ranges, bouncing, and the sprite probe."""

import numpy as np
import pytest
import torch

from framepack_lab import world as W

HELD = list(W.HELDOUT_SEEDS[:200])


def overlapping(w: W.World, t: int, margin: float = 1.5) -> bool:
    """True when two sprites of ``w`` at frame ``t`` come close enough to touch/occlude."""
    p = W.sprite_positions(w, [t])[0]
    s = w.sprites
    return any(np.hypot(*(p[i] - p[j])) < (s[i].radius + s[j].radius) * margin + 1
               for i in range(len(s)) for j in range(i + 1, len(s)))


def test_make_world_is_deterministic_by_seed():
    assert W.make_world(123) == W.make_world(123)
    assert W.make_world(123) != W.make_world(124)
    np.testing.assert_array_equal(W.video(7, 5), W.video(7, 5))
    assert not np.array_equal(W.video(7, 5), W.video(8, 5))


def test_render_any_times_equals_video_frames():
    w = W.make_world(1_000_003)
    v = W.video(1_000_003, 40)
    times = [37, 5, 0, 22, 5]
    np.testing.assert_allclose(W.render(w, times), v[times], atol=1e-6)
    # a start offset is the same as rendering later frames
    np.testing.assert_allclose(W.video(1_000_003, 10, start=30), v[30:40], atol=1e-6)
    # far-future frames render directly (no simulation) and stay valid
    far = W.render(w, [100_000.0])
    assert far.shape == (1, W.SIZE, W.SIZE, 3) and np.isfinite(far).all()


def test_shapes_dtype_and_range():
    v = W.video(3, 6)
    assert v.shape == (6, 64, 64, 3) and v.dtype == np.float32
    assert v.min() >= 0.0 and v.max() <= 1.0
    small = W.video(3, 2, size=32)
    assert small.shape == (2, 32, 32, 3)
    b = W.batch([1, 2, 3], 4, starts=[0, 5, 9])
    assert isinstance(b, torch.Tensor) and b.shape == (3, 4, 3, 64, 64) and b.dtype == torch.float32
    np.testing.assert_allclose(b[1].permute(0, 2, 3, 1).numpy(), W.video(2, 4, start=5), atol=1e-7)


def test_seed_ranges_are_disjoint():
    assert len(W.TRAIN_SEEDS) > 0 and len(W.HELDOUT_SEEDS) > 0
    assert W.TRAIN_SEEDS.stop <= W.HELDOUT_SEEDS.start or W.HELDOUT_SEEDS.stop <= W.TRAIN_SEEDS.start
    assert not set(W.HELDOUT_SEEDS) & set(range(W.TRAIN_SEEDS.start, W.TRAIN_SEEDS.stop, 997))


def test_world_contents():
    for s in HELD[:50]:
        w = W.make_world(s)
        assert 1 <= len(w.sprites) <= 3
        colours = [sp.colour for sp in w.sprites]
        assert len(set(colours)) == len(colours)  # distinct palette colours per world
        assert all(sp.shape in W.SHAPES for sp in w.sprites)


def test_sprites_stay_inside_the_frame_and_bounce():
    t = np.arange(0, 2000, 3.7)
    for s in HELD[:40]:
        w = W.make_world(s)
        p = W.sprite_positions(w, t)
        for j, sp in enumerate(w.sprites):
            assert p[:, j].min() >= sp.radius - 1e-9
            assert p[:, j].max() <= w.size - sp.radius + 1e-9
            # motion is continuous: never more than the speed per frame (bounces fold, not jump)
            step = np.abs(np.diff(W.sprite_positions(w, np.arange(400))[:, j], axis=0))
            assert step[:, 0].max() <= abs(sp.vy) + 1e-9 and step[:, 1].max() <= abs(sp.vx) + 1e-9
        # over 2000 frames every sprite visits both halves of the frame on some axis (it bounces)
        for j in range(len(w.sprites)):
            assert np.ptp(p[:, j]) > 10


def test_find_sprites_recovers_colour_and_centroid():
    n_checked, n_good = 0, 0
    for s in HELD:
        w = W.make_world(s)
        if overlapping(w, 0):
            continue
        found = W.find_sprites(W.render(w, [0])[0])
        pos = W.sprite_positions(w, [0])[0]
        assert set(found) == {sp.colour for sp in w.sprites}, s
        for j, sp in enumerate(w.sprites):
            n_checked += 1
            y, x, count = found[sp.colour]
            assert count >= W.MIN_PIXELS
            n_good += np.hypot(y - pos[j, 0], x - pos[j, 1]) < 1.5
    assert n_checked > 100
    assert n_good / n_checked > 0.95


def test_background_is_never_detected_as_a_sprite():
    false_pos = 0
    for s in HELD:
        w = W.make_world(s)
        colours = {sp.colour for sp in w.sprites}
        for frame in W.render(w, [0, 50, 333]):
            false_pos += len(set(W.find_sprites(frame)) - colours)
        # the background alone (no sprites) shows nothing
        bare = W.World(w.seed, w.size, w.base, w.waves, ())
        false_pos += len(W.find_sprites(W.render(bare, [0])[0]))
    assert false_pos == 0


def test_find_sprites_accepts_torch_and_reports_gone_sprites():
    w = W.make_world(HELD[0])
    frame = W.render(w, [0])[0]
    assert W.find_sprites(torch.from_numpy(frame)) == W.find_sprites(frame)
    grey = np.full((64, 64, 3), 0.5, np.float32)
    assert W.find_sprites(grey) == {}


# ------------------------------------------------------------------------------- motion trails
def test_no_trail_is_the_plain_world_and_trails_change_only_the_pixels():
    plain, trailed = W.make_world(HELD[3], trail=False), W.make_world(HELD[3], trail=True)
    assert trailed.trail and not plain.trail
    assert (trailed.sprites, trailed.waves, trailed.base) == (plain.sprites, plain.waves, plain.base)
    assert W.make_world(HELD[3]).trail == W.DEFAULT_TRAIL
    a, b = W.video(HELD[3], 5, trail=False), W.video(HELD[3], 5, trail=True)
    assert not np.array_equal(a, b)
    assert np.array_equal(W.video(HELD[3], 5, occluded=True, trail=False),
                          W.render(W.make_world(HELD[3], occluded=True, trail=False), range(5)))


def test_a_trail_is_drawn_behind_each_sprite_where_it_was():
    """Each echo tints the background, at its opacity, where the sprite was ``lag`` frames ago;
    echoes are drawn in :data:`TRAIL_ECHOES` order, under the sprite."""
    import dataclasses

    assert [lag for lag, _ in W.TRAIL_ECHOES] == [8, 16]  # the pixels below assume these lags
    (_, near), (_, far) = W.TRAIL_ECHOES
    base = W.make_world(HELD[0], trail=False)
    sprite = W.Sprite("circle", 0, radius=5.0, y0=32.0, x0=40.0, vy=0.0, vx=1.0)  # covers x 40 +- 5.5 at t=0
    plain = dataclasses.replace(base, sprites=(sprite,))
    trailed = dataclasses.replace(plain, trail=True)
    a, b = W.render(plain, [0])[0, 32], W.render(trailed, [0])[0, 32]  # one row through the sprite
    red = W.PALETTE[0]
    np.testing.assert_allclose(b[34], a[34] * (1 - near) + near * red, atol=1e-6)  # 8 frames ago only
    np.testing.assert_allclose(b[22], a[22] * (1 - far) + far * red, atol=1e-6)  # 16 frames ago only
    np.testing.assert_allclose(b[28], (a[28] * (1 - near) + near * red) * (1 - far) + far * red, atol=1e-6)  # both
    np.testing.assert_allclose(b[40], a[40])  # the sprite itself, over its echoes
    np.testing.assert_allclose(b[46:], a[46:])  # nothing ahead of it


def test_find_sprites_does_not_count_trail_pixels_as_sprites():
    """Echoes stay far from the palette: the sprites found and their pixel counts barely change."""
    grown = []
    for seed in HELD[:40]:
        for t in (0, 21, 42, 63):
            plain = W.find_sprites(W.render(W.make_world(seed, trail=False), [t])[0])
            trailed = W.find_sprites(W.render(W.make_world(seed, trail=True), [t])[0])
            assert set(trailed) == set(plain), (seed, t)
            grown += [trailed[c][2] / plain[c][2] - 1 for c in plain]
    assert np.median(grown) < 0.03 and np.mean(grown) < 0.05
