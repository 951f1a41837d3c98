"""The HunyuanVideo FramePack adapter on tiny random-weight components (no files, no network).

The central check: our ``generate`` loop running :func:`official_plan` gives the same latents as
diffusers' own ``HunyuanVideoFramepackPipeline`` for the same inputs and seed, in both of its
sampling orders. Everything else: how plans map onto the transformer's 1x / 2x / 4x inputs,
refusals with clear messages, the weights-folder checks, offload choice, and frame arithmetic.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from framepack_lab.generate import decoded_mask, generate
from framepack_lab.models import hunyuan as hy
from framepack_lab.packing import pack
from framepack_lab.plan import ORDERS, make_plan
from framepack_lab.sampler import dynamic_shift

H, W = 48, 80        # pixels; latent 6 x 10, which k2 / k4 must replicate-pad (exercises the padding)
PROMPT = "a penguin dances in the snow"


@pytest.fixture(scope="module")
def backend():
    return hy.tiny_backend(seed=0, vae_tiling=False)


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cond(backend, image):
    return backend.condition(PROMPT, image, guidance=6.0)


# ------------------------------------------------------------------ against diffusers' pipeline
def _pipeline_latents(backend, image, first_latent, order, n_sections, window, steps, seed):
    """Latents ``(C, 1 + n_sections * window, h, w)`` from ``HunyuanVideoFramepackPipeline``."""
    from PIL import Image

    pipe = backend.pipe
    pipe.set_progress_bar_config(disable=True)
    # The pipeline *samples* the first frame's latent from the VAE posterior (drawing from the
    # generator); our encode takes the posterior mean. Hand it ours; everything else is its own.
    original = pipe.prepare_image_latents
    pipe.prepare_image_latents = lambda *a, **k: first_latent.to(k.get("device"), k.get("dtype"))
    try:
        out = pipe(image=Image.fromarray(image), prompt=PROMPT, height=H, width=W,
                   num_frames=n_sections * hy.pixel_frames(window), latent_window_size=window,
                   num_inference_steps=steps, guidance_scale=6.0, sampling_type=order,
                   generator=torch.Generator().manual_seed(seed), output_type="latent", return_dict=False)[0]
    finally:
        pipe.prepare_image_latents = original
    return out[-1][0]  # the pipeline's whole latent history after the last section


@pytest.mark.parametrize("order,n_sections", [("inverted_anti_drifting", 5), ("vanilla", 3)])
def test_official_plan_matches_diffusers_pipeline(backend, image, cond, order, n_sections):
    window, steps, seed = 3, 4, 7
    plan = hy.official_plan(order, n_sections, window=window)
    ours = generate(backend, image, plan=plan, steps=steps, seed=seed, cond=cond)
    first_latent = backend.encode(torch.from_numpy(image)[None, None].float() / 255)
    theirs = _pipeline_latents(backend, image, first_latent, order, n_sections, window, steps, seed)
    assert ours.latents.shape == theirs.shape == (4, 1 + n_sections * window, 6, 10)
    assert theirs.abs().max() > 1.0  # a real signal, not zeros
    torch.testing.assert_close(ours.latents, theirs.float().cpu(), atol=2e-5, rtol=1e-5)
    assert ours.frames.shape == (hy.pixel_frames(1 + n_sections * window), H, W, 3)


def test_the_comparison_is_sensitive_to_the_packing(backend, image, cond):
    """A plan that differs from the pipeline's only in the RoPE time of its 4x slots gives
    latents far outside the tolerance above, so the match is not vacuous."""
    import dataclasses

    plan = hy.official_plan("inverted_anti_drifting", 2, window=3)
    moved = tuple(dataclasses.replace(s, groups=tuple(
        dataclasses.replace(g, positions=tuple(p + 1 for p in g.positions)) if g.kernel == hy.K4 else g
        for g in s.groups)) for s in plan.steps)
    a = generate(backend, image, plan=plan, steps=2, seed=1, cond=cond).latents
    b = generate(backend, image, plan=dataclasses.replace(plan, steps=moved), steps=2, seed=1, cond=cond).latents
    assert (a - b).abs().max() > 1e-4


def test_official_plan_layout():
    inv = hy.official_plan("inverted_anti_drifting", 5)
    assert inv.order == "inverted_anti_drifting" and inv.n_frames == 46 and inv.total_frames == 47
    first = inv.steps[0]  # generates the last section; padding 3 sections after the anchor
    assert first.generated == tuple(range(37, 46)) and first.positions == tuple(range(28, 37))
    assert [len(g.frames) for g in first.groups] == [1, 1, 2, 16]
    assert all(f == inv.n_frames for g in first.groups[1:] for f in g.frames)  # all slots blank
    van = hy.official_plan("vanilla", 2)
    assert van.order == "f1"
    s0 = van.steps[0]
    assert s0.positions == tuple(range(20, 29))
    assert s0.groups[-1].frames == (0,)  # the 1x slot holds the first frame at the start
    with pytest.raises(ValueError, match="inverted_anti_drifting"):
        hy.official_plan("anti_drifting", 2)


# ------------------------------------------------------------------------- plans -> inputs
def _seen_tokens(inputs, S, h, w):
    n = S * (h // 2) * (w // 2)
    for kernel, (lat, idx) in hy.INPUTS.items():
        t = inputs[lat].shape[2]
        assert t == len(inputs[idx]) and t % kernel.pf == 0
        n += kernel.tokens(t, h, w)
    return n


@pytest.mark.parametrize("plan", [hy.official_plan("inverted_anti_drifting", 3),
                                  hy.official_plan("vanilla", 3)], ids=["inverted", "vanilla"])
def test_map_context_of_official_plans_has_exactly_the_plans_tokens(plan):
    h, w = 6, 10
    video = torch.randn(1, 4, plan.total_frames, h, w)
    for step in plan.steps:
        context = pack(video, step, hy.KERNELS)
        x_t = torch.zeros(1, 4, len(step.generated), h, w)
        inputs = hy.map_context(context, x_t)
        assert inputs["indices_latents"].tolist() == list(step.positions)
        assert _seen_tokens(inputs, len(step.generated), h, w) == step.token_count(h, w)
        clean = inputs["indices_latents_clean"].tolist()
        assert clean[0] == 0 and clean == sorted(clean)  # the anchor first, then the 1x slot
        assert inputs["latents_history_4x"].shape[-2:] == (8, 16)  # replicate-padded to (8, 8)
        torch.testing.assert_close(inputs["latents_clean"][:, :, 0], video[:, :, 0])


@pytest.mark.parametrize("order", ORDERS)
def test_map_context_of_our_plans(order):
    """Our own plans drop blocks without frames; diffusers needs all three inputs, so a missing
    kernel gets one zero filler block placed after every real position."""
    h, w = 6, 10
    plan = make_plan(order, 17)
    video = torch.randn(1, 4, plan.total_frames, h, w)
    for step in plan.steps:
        inputs = hy.map_context(pack(video, step, hy.KERNELS), torch.zeros(1, 4, len(step.generated), h, w))
        present = {g.kernel for g in step.groups}
        fillers = sum(k.tokens(k.pf, h, w) for k in hy.KERNELS - present)
        assert _seen_tokens(inputs, len(step.generated), h, w) == step.token_count(h, w) + fillers
        last = max([*step.positions, *(p for g in step.groups for p in g.positions)])
        for kernel in hy.KERNELS - present:
            lat, idx = hy.INPUTS[kernel]
            assert not inputs[lat].any() and min(inputs[idx].tolist()) > last


def test_transformer_sees_the_mapped_tokens(backend, image, cond):
    plan = hy.official_plan("inverted_anti_drifting", 2, window=3)
    seen = []
    hook = backend.transformer.transformer_blocks[0].register_forward_hook(
        lambda module, args, out: seen.append(args[0].shape[1]))
    try:
        generate(backend, image, plan=plan, steps=1, seed=0, cond=cond)
    finally:
        hook.remove()
    assert seen == [s.token_count(6, 10) for s in plan.steps]


# ------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("name,bad", [("td_f16k8f2k2f1k1_g9", "k8"), ("td_f4k1h4w4f1k1_g9", "k1h4w4"),
                                      ("ta_f16k4f2k2f1k1_g9", "'ta'"), ("tc_f16k4f2k2f1k1_g9", "'tc'")])
def test_check_schedule_refuses_what_the_checkpoint_lacks(name, bad):
    with pytest.raises(ValueError) as e:
        hy.check_schedule(name)
    msg = str(e.value)
    assert bad in msg and "k1 (1, 2, 2), k2 (2, 4, 4) and k4 (4, 8, 8)" in msg and "'td'" in msg


def test_supported_schedules_pass():
    for name in ("f1k1_x_g9_f1k1f2k2f16k4_td", "td_f16k4f4k2f1k1_g9", "f1k1_x_f16k4f2k2f1k1_g9"):
        assert hy.check_schedule(name).name == name


def test_generate_refuses_an_unsupported_plan_before_sampling(backend, image, cond, monkeypatch):
    monkeypatch.setattr(backend, "velocity", lambda *a: pytest.fail("sampled an unsupported plan"))
    with pytest.raises(ValueError, match="'ta'"):
        generate(backend, image, n_frames=9, order="vanilla", schedule="ta_f16k4f2k2f1k1_g4", cond=cond)


def test_velocity_without_condition_says_what_to_do(backend, image):
    plan = hy.official_plan("vanilla", 1, window=2)
    backend.cond = None
    with pytest.raises(ValueError, match="set_condition"):
        generate(backend, image, plan=plan, steps=1)


def test_bad_frame_sizes(backend):
    with pytest.raises(ValueError, match="multiples of 16"):
        backend.latent_size(50, 64)
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        backend.encode(torch.zeros(1, 4, H, W, 3))


# ------------------------------------------------------------------------- weights folder
def _fake_layout(root, transformer_config=None):
    """Placeholder files in the layout ``check_weights_dir`` expects (nothing loadable)."""
    needs = {"model": ["config.json", "model.safetensors"], "tokenizer": ["tokenizer.json"],
             "processor": ["preprocessor_config.json"], "scheduler": ["scheduler_config.json"]}
    for name, part in hy.LAYOUT.items():
        (root / name).mkdir(parents=True)
        for f in needs[part.kind]:
            (root / name / f).write_text("{}")
    config = {"_class_name": "HunyuanVideoFramepackTransformer3DModel", "has_clean_x_embedder": True}
    (root / "transformer" / "config.json").write_text(json.dumps(transformer_config or config))
    return root


def test_weights_dir_good_layout_passes(tmp_path):
    assert hy.check_weights_dir(_fake_layout(tmp_path / "w")) == tmp_path / "w"


def test_weights_dir_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights folder") as e:
        hy.check_weights_dir(tmp_path / "nowhere")
    assert "transformer/" in str(e.value) and "lllyasviel/FramePackI2V_HY" in str(e.value)
    (tmp_path / "afile").write_text("")
    with pytest.raises(FileNotFoundError, match="must be a folder"):
        hy.check_weights_dir(tmp_path / "afile")


def test_weights_dir_wrong_layout_lists_every_problem(tmp_path):
    root = _fake_layout(tmp_path / "w")
    for f in (root / "vae").iterdir():
        f.unlink()
    (root / "vae").rmdir()
    (root / "text_encoder" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="wrong layout") as e:
        hy.check_weights_dir(root)
    msg = str(e.value)
    assert "vae/ is missing" in msg and "text_encoder/ has none of *.safetensors, *.bin" in msg
    assert "expected layout" in msg


def test_weights_dir_pointing_at_one_model(tmp_path):
    one = tmp_path / "FramePackI2V_HY"
    one.mkdir()
    (one / "config.json").write_text("{}")
    (one / "diffusion_pytorch_model.safetensors").write_text("")
    with pytest.raises(FileNotFoundError, match="ONE model's folder"):
        hy.check_weights_dir(one)


def test_weights_dir_refuses_a_plain_hunyuan_transformer(tmp_path):
    root = _fake_layout(tmp_path / "w", {"_class_name": "HunyuanVideoTransformer3DModel"})
    with pytest.raises(FileNotFoundError, match="not a FramePack transformer"):
        hy.check_weights_dir(root)


def test_load_hunyuan_refuses_before_loading(tmp_path):
    with pytest.raises(ValueError, match="allow_download"):
        hy.load_hunyuan()
    with pytest.raises(FileNotFoundError, match="no weights folder"):
        hy.load_hunyuan(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="offload must be one of"):
        hy.load_hunyuan(tmp_path, offload="disk")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cuda_on_a_cpu_machine_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no CUDA GPU") as e:
        hy.load_hunyuan(_fake_layout(tmp_path / "w"), device="cuda")
    assert "tiny_backend" in str(e.value)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        hy.backend_from_components({}, device="cuda")


def test_near_empty_tokenizer_is_refused():
    with pytest.raises(ValueError, match="only .* tokens: its files are incomplete"):
        hy._check_tokenizer(hy._tiny_tokenizer(77), "tokenizer", None)


# ------------------------------------------------------------------------------- offload
def test_choose_offload():
    assert hy.choose_offload("auto", 80.0) == "none"
    assert hy.choose_offload("auto", 40.0) == "model"
    assert hy.choose_offload("auto", 12.0) == "group"
    assert hy.choose_offload("auto", None) == "none"          # CPU
    assert hy.choose_offload("group", 80.0) == "group"        # explicit and fits
    with pytest.raises(ValueError, match="too little GPU memory.*6 GB"):
        hy.choose_offload("auto", 4.0)
    with pytest.raises(ValueError, match="use offload='group'"):
        hy.choose_offload("none", 24.0)
    with pytest.raises(ValueError, match="on the CPU use offload='none'"):
        hy.choose_offload("model", None)
    with pytest.raises(ValueError, match="offload must be one of"):
        hy.choose_offload("sequential", 80.0)


# ---------------------------------------------------------------------------- frame maths
def test_pixel_and_latent_frames():
    assert [hy.pixel_frames(t) for t in (1, 2, 10, 19)] == [1, 5, 37, 73]
    assert hy.latent_frames(33) == 9 and hy.pixel_frames(hy.OFFICIAL_WINDOW) == 33
    assert all(hy.latent_frames(hy.pixel_frames(t)) == t for t in range(1, 40))
    for bad in (0, 2, 32):
        with pytest.raises(ValueError, match="1 \\+ 4k"):
            hy.latent_frames(bad)


def test_decoded_mask_maps_latent_frames_to_pixel_frames():
    assert decoded_mask(5, 5, [0, 2]).tolist() == [True, False, True, False, False]  # one to one
    m = decoded_mask(hy.pixel_frames(4), 4, [0, 2])  # 13 pixel frames
    assert np.flatnonzero(m).tolist() == [0, 5, 6, 7, 8]
    with pytest.raises(ValueError, match="cannot map"):
        decoded_mask(8, 4, [0])


def test_vae_round_trip_shapes(backend):
    frames = torch.rand(1, 9, H, W, 3)
    z = backend.encode(frames)
    assert z.shape == (1, 4, 3, 6, 10)
    assert backend.decode(z).shape == (1, 9, H, W, 3)


def test_our_orders_run_and_preview_pixel_frames(backend, image, cond):
    events = []
    for order in ORDERS:
        watch = (lambda e: events.append(e.preview())) if order == "inverted_anti_drifting" else None
        r = generate(backend, image, n_frames=9, order=order, steps=1, seed=0, cond=cond, callback=watch)
        assert r.frames.shape == (hy.pixel_frames(9), H, W, 3) and r.latents.shape == (4, 9, 6, 10)
    assert events and all(p.shape == (hy.pixel_frames(9), H, W, 3) for p in events)


def test_stopped_run_greys_the_right_pixel_frames(backend, image, cond):
    plan = hy.official_plan("vanilla", 2, window=2)  # frames 1-2, then 3-4
    calls = []
    r = generate(backend, image, plan=plan, steps=1, cond=cond, stop=lambda: calls.append(1) or len(calls) > 1)
    assert r.stopped and r.known == [0, 1, 2]
    grey = np.all(r.frames == 0.5, axis=(1, 2, 3))
    assert grey.tolist() == [False] * 9 + [True] * 8


def test_sampling_shift_is_the_official_rule(backend):
    for tokens in (135, 1000, 14040):
        assert backend.sampling_shift(tokens) == pytest.approx(dynamic_shift(tokens))


# ------------------------------------------------------------------------------- offline
def test_tiny_components_touch_no_network(monkeypatch, image):
    def refuse(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    state = torch.random.get_rng_state()
    be = hy.tiny_backend(seed=1)
    assert torch.equal(state, torch.random.get_rng_state())  # seeding the weights left our RNG alone
    c = be.condition(PROMPT, image)
    ids = be.pipe.tokenizer_2(PROMPT).input_ids
    assert be.pipe.tokenizer_2.unk_token_id not in ids  # an in-memory vocabulary, not an empty one
    assert c.image_embeds.shape[0] == 1 and c.prompt_embeds.shape[:2] == c.prompt_mask.shape


def test_generate_panel_drives_the_adapter(backend, image):
    pytest.importorskip("ipywidgets")
    from framepack_lab.widgets import GeneratePanel

    panel = GeneratePanel(backend, first_frame=image, order="inverted_anti_drifting", n_frames=9, steps=1,
                          background=False, prepare=lambda first: {"cond": backend.condition(PROMPT, first)})
    panel.generate_button.click()
    assert panel.error is None and panel.result.frames.shape == (hy.pixel_frames(9), H, W, 3)
    assert panel.strip.value[:4] == b"\x89PNG"
