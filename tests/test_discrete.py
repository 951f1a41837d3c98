"""Discrete history (+D): K-means codebooks, snapping, the grammar, and generation with them."""

import numpy as np
import pytest
import torch

from framepack_lab import discrete, world
from framepack_lab.generate import generate, generate_many
from framepack_lab.packing import pack, snap_history
from framepack_lab.plan import make_plan
from framepack_lab.schedule import parse

from conftest import random_backend


def test_kmeans_finds_separated_clusters_exactly():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = torch.cat([c + 0.01 * torch.randn(100 + 50 * i, 2, generator=g) for i, c in enumerate(centres)])
    cb = discrete.kmeans(pts, 3, seed=1)
    # sorted by cluster size, largest first: (0, 10) has 200 points, (10, 0) 150, (0, 0) 100
    assert torch.allclose(cb, centres[[2, 1, 0]], atol=0.01)


def test_k1_is_the_mean_and_quantize_snaps_to_rows():
    x = torch.arange(12.0).reshape(6, 2)
    cb = discrete.kmeans(x, 1)
    assert torch.allclose(cb, x.mean(0, keepdim=True))
    lat = torch.randn(2, 4, 3, 4, 4)
    book = torch.randn(5, 4)
    q = discrete.quantize(lat, book)
    assert q.shape == lat.shape
    flat = q.permute(0, 2, 3, 4, 1).reshape(-1, 4)
    assert all(any(torch.equal(v, row) for row in book) for v in flat)
    # nearest centroid: no other row is closer
    d = torch.cdist(lat.permute(0, 2, 3, 4, 1).reshape(-1, 4), book)
    assert torch.allclose((flat - book[d.argmin(1)]).abs().sum(), torch.tensor(0.0))


def test_quantize_refuses_mismatched_channels():
    with pytest.raises(ValueError, match=r"same C"):
        discrete.quantize(torch.zeros(1, 4, 1, 2, 2), torch.zeros(3, 5))


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_kmeans_refuses_bad_k(k):
    with pytest.raises(ValueError, match="K must be a positive integer"):
        discrete.kmeans(torch.zeros(10, 2), k)


def test_grammar_reads_the_codebook_size():
    assert parse("td_f2k1_g4+D").codebook_k is None
    s = parse("td_f2k1_g4+D64")
    assert (s.discrete, s.codebook_k, s.name) == (True, 64, "td_f2k1_g4+D64")
    with pytest.raises(ValueError, match="at least 1"):
        parse("td_f2k1_g4+D0")


def test_snap_history_touches_context_frames_only():
    step = make_plan("vanilla", 13, "td_f2k1_g4").steps[1]  # generates 5..8, sees 3, 4
    video = torch.randn(1, 4, 13, 4, 4)
    book = torch.zeros(1, 4)
    out = snap_history(video, step, book)
    assert torch.equal(out[:, :, [3, 4]], torch.zeros(1, 4, 2, 4, 4))
    others = [f for f in range(13) if f not in (3, 4)]
    assert torch.equal(out[:, :, others], video[:, :, others])
    assert snap_history(video, step, None) is video


def test_k1_history_carries_no_information():
    """With K = 1 every history frame packs to the same tokens, whatever the video was."""
    step = make_plan("vanilla", 13, "td_f4k2f2k1_g4").steps[2]
    book = torch.randn(1, 4)
    a = pack(torch.randn(1, 4, 13, 4, 4), step, codebook=book)
    b = pack(torch.randn(1, 4, 13, 4, 4), step, codebook=book)
    for ga, gb in zip(a.groups, b.groups):
        assert torch.equal(ga.latents, gb.latents)


def _with_codebooks(ks=(1, 4)):
    b = random_backend()
    g = torch.Generator().manual_seed(3)
    b.codebooks = {k: torch.randn(k, b.latent_channels, generator=g) for k in ks}
    return b


def test_generation_with_d_changes_the_video_and_repeats_exactly():
    b = _with_codebooks()
    first = world.video(world.HELDOUT_SEEDS[0], 1, size=32)[0]
    kw = dict(n_frames=9, order="vanilla", steps=2, seed=1, history_noise=0.0)
    plain = generate(b, first, schedule="td_f2k1_g4", **kw)
    d1 = generate(b, first, schedule="td_f2k1_g4+D1", **kw)
    d1_again = generate(b, first, schedule="td_f2k1_g4+D1", **kw)
    assert np.array_equal(d1.frames, d1_again.frames)
    assert not np.allclose(plain.frames[5:], d1.frames[5:])  # the second section saw snapped history


def test_missing_codebook_size_is_refused_before_work():
    b = _with_codebooks()
    first = world.video(world.HELDOUT_SEEDS[0], 1, size=32)[0]
    with pytest.raises(ValueError, match=r"no codebook with K=256.*K in \[1, 4\]"):
        generate(b, first, n_frames=9, order="vanilla", steps=1, schedule="td_f2k1_g4+D")


def test_prefix_frames_are_kept_and_their_steps_skipped():
    b = random_backend()
    v = world.video(world.HELDOUT_SEEDS[1], 13, size=32)
    r = generate_many(b, [v[0]], n_frames=13, order="vanilla", schedule="td_f2k1_g4", steps=1,
                      history_noise=0.0, prefix=[v[1:9]])[0]
    assert len(r.section_seconds) == 1  # sections 1-4 and 5-8 were given; only 9-12 ran
    ref = b.decode(b.encode(torch.from_numpy(v[None, :9]))).numpy()[0]
    assert np.allclose(r.frames[:9], ref, atol=1e-5)


@pytest.mark.parametrize("prefix, message", [
    ([np.zeros((12, 32, 32, 3), np.float32)], "leaves nothing to generate"),
    ([np.zeros((2, 16, 16, 3), np.float32)], "first frame's size"),
    ([np.zeros((2, 32, 32, 3), np.float32)] * 2, "one prefix video per first frame"),
])
def test_bad_prefix_is_refused(prefix, message):
    b = random_backend()
    first = world.video(world.HELDOUT_SEEDS[0], 1, size=32)[0]
    with pytest.raises(ValueError, match=message):
        generate_many(b, [first], n_frames=13, order="vanilla", steps=1, prefix=prefix)
