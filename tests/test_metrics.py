"""Per-frame metrics, start-end contrast, and the ground-truth sprite probes."""

import numpy as np
import pytest

from framepack_lab import metrics as M
from framepack_lab import world as W


def overlapping(w: W.World, t: int, margin: float = 1.5) -> bool:
    p = W.sprite_positions(w, [t])[0]
    s = w.sprites
    return any(np.hypot(*(p[i] - p[j])) < (s[i].radius + s[j].radius) * margin + 1
               for i in range(len(s)) for j in range(i + 1, len(s)))


# --------------------------------------------------------------------- start-end contrast
def test_start_end_contrast_exact_values():
    v = np.arange(20, dtype=float)  # frac 0.15 of 20 = 3 frames at each end
    assert M.start_end_contrast(v) == pytest.approx(abs(np.mean([0, 1, 2]) - np.mean([17, 18, 19])))
    assert M.start_end_contrast(v) == pytest.approx(17.0)
    assert M.start_end_contrast(v, frac=0.5) == pytest.approx(10.0)  # halves: 4.5 vs 14.5
    assert M.start_end_contrast([3.0, 3.0, 3.0, 3.0]) == 0.0
    # at least one frame at each end
    assert M.start_end_contrast([1.0, 5.0], frac=0.01) == pytest.approx(4.0)
    assert M.start_end_contrast([0, 9, 9, 9, 9, 9, 9, 9, 9, 2], frac=0.1) == pytest.approx(2.0)


def test_start_end_contrast_is_direction_independent():
    rng = np.random.default_rng(0)
    v = rng.normal(size=33)
    assert M.start_end_contrast(v) == pytest.approx(M.start_end_contrast(v[::-1]))
    assert M.start_end_contrast(v) >= 0


@pytest.mark.parametrize("frac", [0.0, -0.1, 0.51, 1.0])
def test_start_end_contrast_frac_bounds(frac):
    with pytest.raises(ValueError, match="frac"):
        M.start_end_contrast(np.arange(10.0), frac=frac)


@pytest.mark.parametrize("bad", [[1.0], np.zeros((3, 2)), []])
def test_start_end_contrast_needs_a_series(bad):
    with pytest.raises(ValueError):
        M.start_end_contrast(bad)


# ------------------------------------------------------------------------- per frame
def checkerboard(n=32, cell=2):
    y, x = np.mgrid[:n, :n]
    img = (((y // cell) + (x // cell)) % 2).astype(np.float32)
    return np.repeat(img[..., None], 3, axis=-1)


def box_blur(img, r=2):
    out = np.zeros_like(img)
    k = 2 * r + 1
    pad = np.pad(img, ((r, r), (r, r), (0, 0)), mode="edge")
    for dy in range(k):
        for dx in range(k):
            out += pad[dy:dy + img.shape[0], dx:dx + img.shape[1]]
    return out / k**2


def test_clarity_prefers_sharp_over_blurred():
    sharp = checkerboard()
    video = np.stack([sharp, box_blur(sharp, 1), box_blur(sharp, 2), np.full_like(sharp, 0.5)])
    c = M.clarity(video)
    assert c.shape == (4,)
    assert c[0] > c[1] > c[3] and c[0] > c[2] > c[3]
    assert c[3] == 0.0


def test_dynamic_zero_for_static_video_and_measures_change():
    static = np.repeat(W.video(5, 1), 6, axis=0)
    np.testing.assert_array_equal(M.dynamic(static), np.zeros(6))
    ramp = np.stack([np.full((8, 8, 3), t / 10, np.float32) for t in range(5)])
    np.testing.assert_allclose(M.dynamic(ramp), np.full(5, 0.1), atol=1e-6)
    assert M.dynamic(W.video(5, 6)).min() > 0  # a real world video moves every frame
    assert M.dynamic(static[:1]).shape == (1,)


def test_motion_smoothness_zero_for_linear_fades():
    a, b = W.video(11, 1)[0], W.video(12, 1)[0]
    fade = np.stack([(1 - t) * a + t * b for t in np.linspace(0, 1, 7)])
    ms = M.motion_smoothness(fade)
    assert ms.shape == (7,)
    np.testing.assert_allclose(ms, 0.0, atol=1e-6)
    jerky = fade.copy()
    jerky[3] = b
    assert M.motion_smoothness(jerky)[3] > 0.01
    assert M.motion_smoothness(fade[:2]).tolist() == [0.0, 0.0]


def test_colour_drift_zero_at_start_and_grows_with_a_colour_shift():
    base = W.video(13, 1)[0]
    shifted = np.stack([np.clip(base + np.array([0.03 * t, 0.0, -0.02 * t], np.float32), 0, 1) for t in range(8)])
    d = M.colour_drift(shifted)
    assert d.shape == (8,) and d[0] == 0.0
    assert (np.diff(d) > 0).all()
    # against an explicit reference frame
    np.testing.assert_allclose(M.colour_drift(shifted, reference=shifted[3])[3], 0.0, atol=1e-7)
    assert M.colour_stats(shifted).shape == (8, 6)


def test_colourfulness_grey_is_zero_and_palette_is_colourful():
    grey = np.full((1, 8, 8, 3), 0.4, np.float32)
    assert M.colourfulness(grey)[0] == pytest.approx(0.0, abs=1e-7)
    red = np.broadcast_to(W.PALETTE[0], (1, 8, 8, 3))
    assert M.colourfulness(red)[0] > 0.2


def test_per_frame_metrics_shapes_and_input_check():
    v = W.video(3, 5, size=32)
    for name, fn in M.PER_FRAME.items():
        out = fn(v)
        assert out.shape == (5,), name
        assert np.isfinite(out).all(), name
    with pytest.raises(ValueError, match="T, H, W, 3"):
        M.clarity(np.zeros((5, 8, 8)))


# ----------------------------------------------------------------------- sprite probes
def clean_worlds(t: int, n: int = 60):
    out = [W.make_world(s) for s in W.HELDOUT_SEEDS[:n]]
    return [w for w in out if not overlapping(w, 0) and not overlapping(w, t)]


def test_sprite_survival_is_one_on_true_videos():
    worlds = clean_worlds(16)
    assert len(worlds) >= 20
    for w in worlds:
        v = W.render(w, np.arange(17))
        assert M.sprite_survival(v, 16) == 1.0, w.seed


def test_sprite_survival_detects_vanished_sprites_and_empty_start():
    w = clean_worlds(16)[0]
    v = W.render(w, np.arange(17))
    bare = W.render(W.World(w.seed, w.size, w.base, w.waves, ()), np.arange(17))
    gone = v.copy()
    gone[16] = bare[16]
    assert M.sprite_survival(gone, 16) == 0.0
    assert np.isnan(M.sprite_survival(bare, 16))


def test_sprite_displacements_match_ground_truth():
    errors = []
    for w in clean_worlds(16):
        v = W.render(w, np.arange(17))
        d, true = M.sprite_displacements(v, 16), M.true_displacements(w, 16)
        assert set(d) == set(true) == {s.colour for s in w.sprites}
        errors += [abs(d[c] - true[c]) for c in true]
    assert max(errors) < 1.5 and np.mean(errors) < 0.5
    # no motion, no displacement
    w = clean_worlds(16)[0]
    still = np.repeat(W.render(w, [0]), 3, axis=0)
    assert all(x == 0.0 for x in M.sprite_displacements(still, 2).values())
    assert all(x == 0.0 for x in M.true_displacements(w, 0).values())


def test_invented_sprites_flags_frames_with_a_new_colour():
    v = W.video(W.HELDOUT_SEEDS[0], 10).copy()
    assert M.invented_sprites(v).tolist() == [0.0] * 10  # this world shows all its sprites at frame 0
    new = next(c for c in range(len(W.PALETTE)) if c not in W.find_sprites(v[0]))
    v[6:, :5, :5] = W.PALETTE[new]  # a 25-pixel sprite of a colour frame 0 lacks, from frame 6 on
    assert M.invented_sprites(v).tolist() == [0.0] * 6 + [1.0] * 4
    assert new in W.find_sprites(v[7])
