"""Cross-check our plan, packing and RoPE alignment against diffusers' FramePack transformer.

diffusers' ``HunyuanVideoFramepackTransformer3DModel`` is a reference none of us wrote. We build a tiny
random-weight instance in memory (no weights are downloaded), feed it the inputs the official
sampling loops build (``latents_clean`` = the 1x frames, ``latents_history_2x`` / ``_4x`` and their
index tensors) taken from one of *our* plan steps, and compare what reaches its first transformer
block with what our code predicts:

* the packed sequence length equals ``Step.token_count(h, w)``;
* its RoPE ``cos`` / ``sin`` per group (diffusers orders the sequence [4x, 2x, 1x, noisy]) equal our
  aligned phases (``PackedGroup.phases`` / ``PackedContext.noisy_phases``);
* its tokens per group equal its own patch embeddings applied to our packed (padded) latents;
* our RoPE positions equal the indices the official loops compute.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

diffusers = pytest.importorskip("diffusers")

from framepack_lab.packing import pack  # noqa: E402
from framepack_lab.plan import f1, inverted_anti_drifting, inverted_padding  # noqa: E402
from framepack_lab.schedule import Kernel  # noqa: E402

OFFICIAL_INVERTED = "f1k1_x_g9_f1k1f2k2f16k4_td"
OFFICIAL_F1 = "f1k1_x_f16k4f2k2f1k1_g9"
AXES = (4, 6, 6)
HEAD_DIM = sum(AXES)
K1, K2, K4 = Kernel.k(1), Kernel.k(2), Kernel.k(4)
AVAILABLE = (K1, K2, K4)  # proj, proj_2x, proj_4x
N_SECTIONS = 8
N_FRAMES = 1 + 9 * N_SECTIONS


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = diffusers.HunyuanVideoFramepackTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=HEAD_DIM,
        num_layers=1, num_single_layers=1, num_refiner_layers=1, mlp_ratio=1.0,
        patch_size=2, patch_size_t=1, qk_norm="rms_norm", guidance_embeds=False,
        text_embed_dim=8, pooled_projection_dim=8, rope_theta=256.0, rope_axes_dim=AXES,
        image_condition_type=None, has_image_proj=True, image_proj_dim=8, has_clean_x_embedder=True,
    )
    return m.eval()


def _groups_by_kernel(step, ctx):
    by = {K1: [], K2: [], K4: []}
    for g, pg in zip(step.groups, ctx.groups):
        assert g.tail is None
        by[g.kernel].append((g, pg))
    for k in (K2, K4):
        assert len(by[k]) == 1, "the official layout has one 2x and one 4x group"
    # diffusers concatenates the 1x frames (start anchor + post/last frame) into one tensor
    by[K1].sort(key=lambda gp: gp[0].positions[0])
    return by


def _run(model, step, H, W, seed=0):
    """Forward the diffusers model on the inputs the official loop builds from ``step``.

    Returns ``(ctx, by_kernel, captured)`` where ``captured`` holds the hidden states and rotary
    embedding entering the first transformer block.
    """
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(1, 4, N_FRAMES, H, W, generator=g)
    ctx = pack(video, step, AVAILABLE)
    by = _groups_by_kernel(step, ctx)

    one_x = [f for grp, _ in by[K1] for f in grp.frames]
    one_x_idx = [p for grp, _ in by[K1] for p in grp.positions]
    (g2, _), (g4, _) = by[K2][0], by[K4][0]
    t = lambda xs: torch.tensor(list(xs))  # noqa: E731
    inputs = dict(
        hidden_states=video[:, :, list(step.generated)],
        timestep=torch.tensor([500.0]),
        encoder_hidden_states=torch.randn(1, 5, 8, generator=g),
        encoder_attention_mask=torch.ones(1, 5, dtype=torch.long),
        pooled_projections=torch.randn(1, 8, generator=g),
        image_embeds=torch.randn(1, 3, 8, generator=g),
        indices_latents=t(step.positions),
        latents_clean=video[:, :, one_x],
        indices_latents_clean=t(one_x_idx),
        latents_history_2x=video[:, :, list(g2.frames)],
        indices_latents_history_2x=t(g2.positions),
        latents_history_4x=video[:, :, list(g4.frames)],
        indices_latents_history_4x=t(g4.positions),
        return_dict=False,
    )
    captured = {}

    def hook(module, args, kwargs):
        captured["hidden_states"] = args[0].detach().clone()
        captured["rotary"] = tuple(r.detach().clone() for r in args[4])

    handle = model.transformer_blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            out = model(**inputs)[0]
    finally:
        handle.remove()
    assert out.shape == inputs["hidden_states"].shape
    return ctx, by, captured


def _split(x, by, n_noisy):
    """Split diffusers' packed sequence [4x, 2x, 1x, noisy] using our per-group token counts."""
    sizes = [by[K4][0][1].n_tokens, by[K2][0][1].n_tokens, sum(pg.n_tokens for _, pg in by[K1]), n_noisy]
    assert sum(sizes) == x.shape[0]
    return dict(zip(("4x", "2x", "1x", "noisy"), torch.split(x, sizes, dim=0)))


def _official_inverted_indices(k, n_sections, window=9, history=(1, 2, 16)):
    """The official inverted loop's index arithmetic for section k (written from its description)."""
    pad = inverted_padding(n_sections)[k] * window
    idx = torch.arange(0, 1 + pad + window + sum(history))
    prefix, _, noisy, h1, h2, h4 = idx.split([1, pad, window, *history])
    return noisy, torch.cat([prefix, h1]), h2, h4


def _official_f1_indices(window=9, history=(16, 2, 1)):
    idx = torch.arange(0, 1 + sum(history) + window)
    prefix, h4, h2, h1, noisy = idx.split([1, *history, window])
    return noisy, torch.cat([prefix, h1]), h2, h4


def _inverted_step(k):
    plan = inverted_anti_drifting(N_FRAMES, OFFICIAL_INVERTED)
    assert len(plan) == N_SECTIONS
    return plan.steps[k]


def _f1_step(k):
    plan = f1(N_FRAMES, OFFICIAL_F1)
    return plan.steps[k]


# steps with a full 1+2+16 history: inverted steps 3, 4 (pad 2) and 7 (the last, pad 0); F1 late steps
FULL_STEPS = [("inverted", 3), ("inverted", 4), ("inverted", N_SECTIONS - 1), ("f1", 4), ("f1", N_SECTIONS - 1)]
SIZES = [(16, 12), (10, 14), (8, 8)]


def _step(kind, k):
    return _inverted_step(k) if kind == "inverted" else _f1_step(k)


@pytest.mark.parametrize("kind,k", FULL_STEPS)
def test_positions_equal_official_indices(kind, k):
    step = _step(kind, k)
    noisy, clean, h2, h4 = _official_inverted_indices(k, N_SECTIONS) if kind == "inverted" else _official_f1_indices()
    groups = {K1: [], K2: [], K4: []}
    for g in step.groups:
        groups[g.kernel].extend(g.positions)
    assert list(step.positions) == noisy.tolist()
    assert sorted(groups[K1]) == clean.tolist()
    assert groups[K2] == h2.tolist()
    assert groups[K4] == h4.tolist()
    assert all(len(g.frames) == g.block.frames for g in step.groups)  # full history


@pytest.mark.parametrize("H,W", SIZES)
@pytest.mark.parametrize("kind,k", FULL_STEPS + [("inverted", 1), ("f1", 1)])
def test_sequence_length_rope_and_tokens_match_diffusers(model, kind, k, H, W):
    step = _step(kind, k)
    ctx, by, cap = _run(model, step, H, W)
    hs = cap["hidden_states"][0]
    cos, sin = cap["rotary"]
    n_noisy = len(step.generated) * (H // 2) * (W // 2)

    # (a) the packed sequence diffusers builds has exactly the tokens our plan counts
    assert hs.shape[0] == step.token_count(H, W) == ctx.n_tokens + n_noisy
    assert cos.shape == sin.shape == (hs.shape[0], HEAD_DIM)

    # (b) aligned RoPE per group, diffusers order [4x, 2x, 1x, noisy]
    d_cos, d_sin = _split(cos, by, n_noisy), _split(sin, by, n_noisy)
    theta = model.config.rope_theta
    ours = {
        "4x": by[K4][0][1].phases(AXES, theta),
        "2x": by[K2][0][1].phases(AXES, theta),
        "1x": tuple(torch.cat(parts) for parts in zip(*(pg.phases(AXES, theta) for _, pg in by[K1]))),
        "noisy": ctx.noisy_phases(AXES, theta),
    }
    for name, (c, s) in ours.items():
        assert c.shape == d_cos[name].shape, name
        torch.testing.assert_close(c, d_cos[name], atol=1e-5, rtol=0, msg=f"cos of {name}")
        torch.testing.assert_close(s, d_sin[name], atol=1e-5, rtol=0, msg=f"sin of {name}")

    # the whole context in our group order is a permutation of diffusers' context part
    c_all, _ = ctx.context_phases(AXES, theta)
    assert c_all.shape[0] == hs.shape[0] - n_noisy

    # (c) diffusers' own patch embeddings on our packed latents give the tokens it built itself
    emb = model.clean_x_embedder
    flat = lambda x: x.flatten(2).transpose(1, 2)[0]  # noqa: E731
    with torch.no_grad():
        ours_tokens = {
            "4x": flat(emb.proj_4x(by[K4][0][1].latents)),
            "2x": flat(emb.proj_2x(by[K2][0][1].latents)),
            "1x": flat(emb.proj(torch.cat([pg.latents for _, pg in by[K1]], dim=2))),
        }
    d_tokens = _split(hs, by, n_noisy)
    for name, x in ours_tokens.items():
        torch.testing.assert_close(x, d_tokens[name], atol=1e-5, rtol=1e-5, msg=f"tokens of {name}")


def test_partial_history_exercises_time_padding(model):
    """Inverted step 1 sees only one section after it: the 4x group holds 6 frames (padded to 8)."""
    step = _inverted_step(1)
    sizes = {g.kernel: len(g.frames) for g in step.groups if g.role == "right"}
    assert sizes == {K1: 1, K2: 2, K4: 6}
    ctx, by, cap = _run(model, step, 16, 12)
    assert by[K4][0][1].latents.shape[2] == 8
    assert cap["hidden_states"].shape[1] == step.token_count(16, 12)


def test_acceptance_layout_token_count_matches_diffusers_at_80x76(model):
    """The notes' worked example (17,500 tokens at latent 80x76), measured on diffusers' sequence."""
    step = _inverted_step(4)
    assert step.token_count(80, 76) == 17500
    z = lambda t: torch.zeros(1, 4, t, 80, 76)  # noqa: E731
    with torch.no_grad():
        noisy = model.x_embedder(z(9)).shape[1]
        one_x, two_x, four_x = (e.shape[1] for e in model.clean_x_embedder(z(2), z(2), z(16)))
    assert (noisy, one_x, two_x, four_x) == (13680, 3040, 380, 400)
    assert noisy + one_x + two_x + four_x == 17500
