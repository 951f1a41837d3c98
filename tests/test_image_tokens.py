"""Image tokens (``TinyConfig.image_tokens``): the first frame enters every step as tokens with no
RoPE phase, the tiny analogue of the official model's image embedding of the input frame."""

import dataclasses

import pytest
import torch

from conftest import random_backend, randomize_zero_init, tiny_config
from framepack_lab.generate import generate
from framepack_lab.models.tiny import TinyFramePack, load_tiny, save_tiny
from framepack_lab.models.autoencoder import TinyAutoencoder
from framepack_lab.packing import pack
from framepack_lab.plan import make_plan


def _model(image_tokens: bool = True, seed: int = 0) -> TinyFramePack:
    torch.manual_seed(seed)
    return randomize_zero_init(TinyFramePack(tiny_config(image_tokens=image_tokens)), seed).eval()


def _step_inputs(order: str = "vanilla", step_index: int = -1, B: int = 2, n_frames: int = 64):
    plan = make_plan(order, n_frames)
    step = plan.steps[step_index]
    video = torch.randn(B, 4, plan.total_frames, 8, 8, generator=torch.Generator().manual_seed(0))
    x_t = torch.randn(B, 4, len(step.generated), 8, 8, generator=torch.Generator().manual_seed(1))
    return video, step, x_t, torch.full((B,), 0.5)


def test_pack_carries_the_first_frame_even_when_the_plan_packs_it_away():
    video, step, _, _ = _step_inputs("vanilla", -1)
    assert 0 not in {f for g in step.groups for f in g.frames}  # vanilla's last step has forgotten frame 0
    ctx = pack(video, step)
    assert ctx.image.shape == (2, 4, 1, 8, 8)
    assert torch.equal(ctx.image, video[:, :, :1])


def test_the_first_frame_is_never_noised_as_history():
    video, step, _, _ = _step_inputs("f1", -1)
    ctx = pack(video, step, history_noise=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ctx.image, video[:, :, :1])


@torch.no_grad()
def test_the_model_reads_the_image_in_every_step():
    model = _model()
    video, step, x_t, sigma = _step_inputs("vanilla", -1)
    ctx = pack(video, step, model.kernels)
    other = dataclasses.replace(ctx, image=torch.randn_like(ctx.image))
    assert not torch.allclose(model(x_t, sigma, ctx), model(x_t, sigma, other))
    assert model(x_t, sigma, ctx).shape == x_t.shape


@torch.no_grad()
def test_a_model_without_image_tokens_ignores_the_image():
    model = _model(image_tokens=False)
    video, step, x_t, sigma = _step_inputs("f1", -1)
    ctx = pack(video, step, model.kernels)
    assert torch.equal(model(x_t, sigma, ctx), model(x_t, sigma, dataclasses.replace(ctx, image=None)))


@torch.no_grad()
def test_image_tokens_have_no_place():
    """They carry no RoPE phase, so the model reads the image as a set of patches: rolling it by
    whole patches (2 latent pixels) with wrap-around permutes its tokens and changes nothing. The
    history's tokens do have places: rolling the last history frame changes the prediction."""
    model = _model()
    video, step, x_t, sigma = _step_inputs("f1", -1)
    ctx = pack(video, step, model.kernels)
    rolled = dataclasses.replace(ctx, image=torch.roll(ctx.image, shifts=(2, 4), dims=(-2, -1)))
    torch.testing.assert_close(model(x_t, sigma, ctx), model(x_t, sigma, rolled), atol=1e-5, rtol=1e-5)
    last = ctx.groups[-1]
    moved = dataclasses.replace(ctx, groups=ctx.groups[:-1] + [
        dataclasses.replace(last, latents=torch.roll(last.latents, shifts=(2, 4), dims=(-2, -1)))])
    assert not torch.allclose(model(x_t, sigma, ctx), model(x_t, sigma, moved), atol=1e-3)


def test_a_context_without_the_image_is_refused():
    model = _model()
    video, step, x_t, sigma = _step_inputs()
    ctx = dataclasses.replace(pack(video, step, model.kernels), image=None)
    with pytest.raises(ValueError, match="image_tokens"):
        model(x_t, sigma, ctx)


def test_config_refuses_a_non_bool():
    with pytest.raises(ValueError, match="image_tokens"):
        tiny_config(image_tokens=1)


def test_gradients_reach_the_image_embedding():
    model = _model().train()
    video, step, x_t, sigma = _step_inputs()
    model(x_t, sigma, pack(video, step, model.kernels)).square().mean().backward()
    assert model.embed_image.weight.grad is not None and model.embed_image.weight.grad.abs().sum() > 0


def test_generation_and_save_load_round_trip(tmp_path):
    backend = random_backend(0, image_tokens=True, history_noise=True)
    frame = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(3))
    kw = dict(n_frames=9, steps=2, seed=5, progress=False)
    first = generate(backend, frame, history_guidance=1.5, **kw).frames
    save_tiny(tmp_path, backend.model, backend.autoencoder)
    loaded = load_tiny(tmp_path, device="cpu")
    assert loaded.model.config.image_tokens
    torch.testing.assert_close(generate(loaded, frame, history_guidance=1.5, **kw).frames, first, atol=2e-2, rtol=0)
    assert isinstance(loaded.autoencoder, TinyAutoencoder)
