"""The tiny autoencoder and DiT: shapes, the official kernel init, zero-init output, permutation
consistency of attention, save/load round trips and device/size errors."""

import json

import pytest
import torch
import torch.nn.functional as F

from conftest import randomize_zero_init, tiny_config
from framepack_lab.models.autoencoder import TinyAutoencoder
from framepack_lab.models.tiny import TinyBackend, TinyFramePack, load_tiny, save_tiny
from framepack_lab.packing import PackedContext, pack
from framepack_lab.plan import ORDERS, make_plan


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def step_with_groups(order: str, n_frames: int = 25, min_groups: int = 2):
    """A plan step of ``order`` with as many context groups as the plan offers."""
    plan = make_plan(order, n_frames)
    step = max(plan.steps, key=lambda s: len(s.groups))
    assert len(step.groups) >= min_groups
    return plan, step


def packed(model: TinyFramePack, order: str, B: int = 1, hw=(8, 8), seed: int = 0):
    plan, step = step_with_groups(order)
    video = torch.randn(B, model.config.latent_channels, plan.total_frames, *hw, generator=_gen(seed))
    ctx = pack(video, step, model.kernels)
    x_t = torch.randn(B, model.config.latent_channels, len(step.generated), *hw, generator=_gen(seed + 1))
    return step, ctx, x_t


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return randomize_zero_init(TinyFramePack(tiny_config())).eval()


# ------------------------------------------------------------------------- autoencoder
@pytest.mark.parametrize("H,W", [(32, 32), (32, 48)])
def test_autoencoder_shapes(H, W):
    ae = TinyAutoencoder(4, width=8).eval()
    frames = torch.rand(2, 3, H, W, 3, generator=_gen())
    z = ae.encode(frames)
    assert z.shape == (2, 4, 3, H // 4, W // 4)
    out = ae.decode(z)
    assert out.shape == (2, 3, H, W, 3)
    assert out.min() >= 0 and out.max() <= 1
    # frame t of the video is image t of the batch (no mixing of time and batch axes)
    img = ae.encode_images(frames[1, 2].permute(2, 0, 1)[None])
    torch.testing.assert_close(z[1, :, 2], img[0], atol=1e-5, rtol=1e-5)


def test_autoencoder_normalisation_buffers():
    ae = TinyAutoencoder(4, width=8).eval()
    frames = torch.rand(1, 2, 32, 32, 3, generator=_gen())
    z0 = ae.encode(frames)
    ae.latent_mean.fill_(0.5)
    ae.latent_std.fill_(2.0)
    torch.testing.assert_close(ae.encode(frames), (z0 - 0.5) / 2.0)
    # decode undoes the normalisation: normalised latents decode to the same frames as before
    ae2 = TinyAutoencoder(4, width=8).eval()
    ae2.load_state_dict({k: v for k, v in ae.state_dict().items() if "latent_" not in k}, strict=False)
    torch.testing.assert_close(ae.decode(ae.encode(frames)), ae2.decode(z0), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------- DiT
@pytest.mark.parametrize("order", ORDERS)
def test_forward_shape_for_each_order(model, order):
    step, ctx, x_t = packed(model, order, B=2)
    out = model(x_t, torch.tensor([0.3, 0.9]), ctx)
    assert out.shape == x_t.shape == (2, 4, len(step.generated), 8, 8)
    assert torch.isfinite(out).all()
    cos, sin = model.rope(ctx)
    noisy_tokens = len(step.generated) * 4 * 4
    assert cos.shape == sin.shape == (ctx.n_tokens + noisy_tokens, 16)


def test_forward_without_context():
    m = randomize_zero_init(TinyFramePack(tiny_config())).eval()
    ctx = PackedContext([], (1, 2), (8, 8))
    x = torch.randn(1, 4, 2, 8, 8, generator=_gen())
    assert m(x, torch.tensor([0.5]), ctx).shape == x.shape


def test_official_init_big_kernels_equal_k1_after_avg_pool():
    torch.manual_seed(1)
    m = TinyFramePack(tiny_config())
    x = torch.randn(2, 4, 8, 16, 16, generator=_gen())
    base = m.embed_clean["k1"]
    assert {k.name for k in m.kernels} == {"k1", "k2", "k4", "k8"}
    for k in m.kernels:
        assert m.embed_clean[k.name].kernel_size == k.size == (k.ratio[0], 2 * k.ratio[1], 2 * k.ratio[2])
        torch.testing.assert_close(m.embed_clean[k.name](x), base(F.avg_pool3d(x, k.ratio)), atol=1e-5, rtol=1e-5)


def test_output_is_zero_at_init():
    torch.manual_seed(2)
    m = TinyFramePack(tiny_config()).eval()
    step, ctx, x_t = packed(m, "vanilla")
    out = m(x_t, torch.tensor([0.7]), ctx)
    assert torch.count_nonzero(out) == 0
    # hence the backend's velocity at init is x_t / sigma (x0 = 0)
    be = TinyBackend(m, TinyAutoencoder(4, width=8).eval())
    torch.testing.assert_close(be.velocity(x_t, torch.tensor([0.5]), ctx), x_t / 0.5)


@pytest.mark.parametrize("order", ["vanilla", "inverted_anti_drifting", "anti_drifting"])
def test_attention_is_permutation_consistent(model, order):
    """Tokens carry their position in RoPE, so the order of the context groups is irrelevant."""
    step, ctx, x_t = packed(model, order)
    assert len(ctx.groups) >= 2
    shuffled = PackedContext(list(reversed(ctx.groups)), ctx.positions, ctx.latent_size)
    sigma = torch.tensor([0.6])
    a, b = model(x_t, sigma, ctx), model(x_t, sigma, shuffled)
    assert a.abs().max() > 1e-3  # a real (non-zero) output
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # ...while positions do matter: dropping time offsets changes the output
    c = model(x_t, sigma, ctx, rope_time_offset=False)
    assert (a - c).abs().max() > 1e-4


def test_context_changes_the_prediction(model):
    step, ctx, x_t = packed(model, "vanilla")
    other = pack(torch.randn(1, 4, max(step.generated) + 1, 8, 8, generator=_gen(9)), step, model.kernels)
    sigma = torch.tensor([0.5])
    assert (model(x_t, sigma, ctx) - model(x_t, sigma, other)).abs().max() > 1e-4


# ------------------------------------------------------------------------ save / load
def test_save_load_round_trip(tmp_path, model):
    ae = TinyAutoencoder(4, width=8).eval()
    ae.latent_mean.copy_(torch.tensor([0.1, -0.2, 0.3, 0.123456789]))
    ae.latent_std.copy_(torch.tensor([1.5, 0.7, 1.1, 0.987654321]))
    save_tiny(tmp_path / "ck", model, ae, extra={"training_record": {"steps": 7}})
    assert (tmp_path / "ck" / "model.safetensors").exists()
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert cfg["training_record"] == {"steps": 7} and cfg["model"]["width"] == 32

    be = load_tiny(tmp_path / "ck")
    assert isinstance(be, TinyBackend) and not be.model.training and not be.autoencoder.training
    assert be.model.config == model.config
    # the latent statistics are stored in float32 exactly
    torch.testing.assert_close(be.autoencoder.latent_std, ae.latent_std, atol=0, rtol=0)

    step, ctx, x_t = packed(model, "f1")
    sigma = torch.tensor([0.4])
    ref = model(x_t, sigma, ctx)
    torch.testing.assert_close(be.model(x_t, sigma, ctx), ref, atol=2e-2 * ref.abs().max().item(), rtol=0)
    # exactly what fp16-rounding the weights gives
    rounded = TinyFramePack(model.config).eval()
    rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    torch.testing.assert_close(be.model(x_t, sigma, ctx), rounded(x_t, sigma, ctx), atol=1e-5, rtol=1e-5)

    frames = torch.rand(1, 2, 32, 32, 3, generator=_gen())
    torch.testing.assert_close(be.decode(be.encode(frames)), ae.decode(ae.encode(frames)), atol=2e-2, rtol=0)


def test_load_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_tiny(tmp_path / "nothing-here")
    msg = str(e.value)
    assert "nothing-here" in msg and "model.safetensors" in msg and "framepack_lab.train" in msg


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_load_on_cuda_without_gpu_raises(tmp_path, model):
    save_tiny(tmp_path / "ck", model, TinyAutoencoder(4, width=8))
    with pytest.raises(ValueError, match="cuda"):
        load_tiny(tmp_path / "ck", device="cuda")


def test_latent_size_validation():
    be = TinyBackend(TinyFramePack(tiny_config()), TinyAutoencoder(4, width=8))
    assert be.latent_size(64, 64) == (16, 16)
    assert be.latent_size(32, 48) == (8, 12)
    for H, W in [(60, 60), (36, 20), (4, 64), (0, 64)]:
        with pytest.raises(ValueError, match=f"{H}x{W}"):
            be.latent_size(H, W)
    with pytest.raises(ValueError, match="60x60"):
        be.encode(torch.rand(1, 1, 60, 60, 3))
    assert be.kernels == frozenset(be.model.kernels) and be.latent_channels == 4
