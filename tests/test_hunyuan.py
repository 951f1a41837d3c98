"""The HunyuanVideo FramePack adapter on tiny random-weight components (no files, no network).

The central check: our ``generate`` loop running :func:`official_plan` gives the same latents as
diffusers' own ``HunyuanVideoFramepackPipeline`` for the same inputs and seed, in both of its
sampling orders. Everything else: how plans map onto the transformer's 1x / 2x / 4x inputs,
refusals with clear messages, the weights-folder checks, offload choice, and frame arithmetic.
"""

from __future__ import annotations

import dataclasses
import json
import socket

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from framepack_lab.generate import decoded_mask, generate
from framepack_lab.models import hunyuan as hy
from framepack_lab.models.hunyuan.loading import _check_tokenizer
from framepack_lab.models.hunyuan.stand_in import _tiny_tokenizer
from framepack_lab.packing import pack
from framepack_lab.plan import ORDERS, make_plan, official_plan
from framepack_lab.sampler import dynamic_shift
from framepack_lab.schedule import Kernel

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
@pytest.mark.parametrize("order,n_sections", [("inverted_anti_drifting", 5), ("f1", 3)])
def test_official_plan_matches_diffusers_pipeline(backend, image, order, n_sections):
    """hy.compare_with_pipeline: our generate with official_plan vs HunyuanVideoFramepackPipeline
    (handed our first-frame latent: it samples the VAE posterior, our encode takes its mean)."""
    window, steps, seed = 3, 4, 7
    check = hy.compare_with_pipeline(backend, image, PROMPT, order, n_sections, window=window, steps=steps,
                                     seed=seed, guidance=6.0)
    ours, theirs = check.result, check.theirs
    assert ours.latents.shape == theirs.shape == (4, 1 + n_sections * window, 6, 10)
    assert theirs.abs().max() > 1.0  # a real signal, not zeros
    torch.testing.assert_close(ours.latents, theirs.float().cpu(), atol=2e-5, rtol=1e-5)
    assert ours.frames.shape == (hy.pixel_frames(1 + n_sections * window), H, W, 3)
    assert check.max_diff < 2e-4 and check.row()["latent frames"] == 1 + n_sections * window
    assert "prepare_image_latents" not in vars(backend.pipe)  # the pipeline's own method is back


@pytest.mark.parametrize("n_sections", [1, 2, 5])
def test_end_frame_matches_diffusers_last_image(backend, image, n_sections):
    """An end frame (condition(..., last_image=end)) vs the pipeline's ``last_image``: the same latents
    (both handed our end-frame latent, as the first frame's), and a different video than without it."""
    end = (np.random.default_rng(1).random((H, W, 3)) * 255).astype(np.uint8)
    kw = dict(window=3, steps=4, seed=7, guidance=6.0)
    check = hy.compare_with_pipeline(backend, image, PROMPT, "inverted_anti_drifting", n_sections, last_image=end, **kw)
    torch.testing.assert_close(check.result.latents, check.theirs.float().cpu(), atol=2e-5, rtol=1e-5)
    plain = hy.compare_with_pipeline(backend, image, PROMPT, "inverted_anti_drifting", n_sections, **kw)
    assert (check.result.latents - plain.result.latents).abs().max() > 1e-3  # the end frame is really used
    assert (check.theirs - plain.theirs).abs().max() > 1e-3
    assert "prepare_image_latents" not in vars(backend.pipe)


def test_bf16_components_match_the_pipeline(image):
    """The stand-in in bf16 (as the released weights run): our loop and the pipeline cast the same
    inputs the same way, so they agree to float rounding; bf16 vs float32 differs by about 2%."""
    bf16 = hy.tiny_backend(seed=0, vae_tiling=False, dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and bf16.vae.dtype == torch.bfloat16
    check = hy.compare_with_pipeline(bf16, image, PROMPT, "f1", 2, seed=7)
    assert check.max_diff < 1e-4 and check.theirs.abs().max() > 1.0
    with pytest.raises(ValueError, match="dtype must be a floating torch dtype"):
        hy.tiny_backend(dtype=torch.int8)


def test_the_pipeline_takes_our_order_names(backend, image):
    assert hy.SAMPLING_TYPE == {"inverted_anti_drifting": "inverted_anti_drifting", "f1": "vanilla"}
    with pytest.raises(ValueError, match="'f1'"):
        hy.pipeline_latents(backend, image, PROMPT, "vanilla", 1)


def test_the_comparison_is_sensitive_to_the_packing(backend, image, cond):
    """A plan that differs from the pipeline's only in the RoPE time of its 4x slots gives
    latents far outside the tolerance above, so the match is not vacuous."""
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
    van = hy.official_plan("f1", 2)
    assert van.order == "f1"
    s0 = van.steps[0]
    assert s0.positions == tuple(range(20, 29))
    assert s0.groups[-1].frames == (0,)  # the 1x slot holds the first frame at the start
    with pytest.raises(ValueError, match="inverted_anti_drifting"):
        hy.official_plan("anti_drifting", 2)
    with pytest.raises(ValueError, match="sampling_type='vanilla' is our order 'f1'"):
        hy.official_plan("vanilla", 2)  # diffusers' name for the F1 loop is not one of our orders
    assert hy.official_plan is official_plan  # it lives in plan.py, beside the other orders


# ------------------------------------------------------------------------- plans -> inputs
def _seen_tokens(inputs, S, h, w):
    n = S * (h // 2) * (w // 2)
    for kernel, (lat, idx) in hy.INPUTS.items():
        t = inputs[lat].shape[2]
        assert t == len(inputs[idx]) and t % kernel.pf == 0
        n += kernel.tokens(t, h, w)
    return n


@pytest.mark.parametrize("plan", [hy.official_plan("inverted_anti_drifting", 3),
                                  hy.official_plan("f1", 3)], ids=["inverted", "f1"])
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
    plan = hy.official_plan("f1", 1, window=2)
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
        _check_tokenizer(_tiny_tokenizer(77), "tokenizer", None)


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
    plan = hy.official_plan("f1", 2, window=2)  # frames 1-2, then 3-4
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


# ----------------------------------------------------------------- per-section preparation
def test_prepare_section_holds_the_mapped_inputs_and_velocity_uses_them(backend, cond):
    plan = hy.official_plan("inverted_anti_drifting", 2, window=3)
    video = torch.randn(1, 4, plan.total_frames, 6, 10)
    context = pack(video, plan.steps[0], hy.KERNELS)
    prepared = backend.prepare_section(context)
    assert isinstance(prepared, hy.SectionInputs) and prepared.batch == 1
    x_t = torch.randn(1, 4, 3, 6, 10)
    expected = hy.map_context(context, x_t)
    assert prepared.tensors.keys() == expected.keys()
    for k, v in expected.items():
        torch.testing.assert_close(prepared.tensors[k], v.to(prepared.tensors[k].dtype))
    sigma = torch.full((1,), 0.5)
    direct = backend.velocity(x_t, sigma, context, cond)  # context.prepared is None: computed here
    assert vars(context).keys() == {f.name for f in dataclasses.fields(context)}  # nothing hidden in the context
    ready = dataclasses.replace(context, prepared=prepared)
    torch.testing.assert_close(backend.velocity(x_t, sigma, ready, cond), direct)
    with pytest.raises(ValueError, match="prepare_section"):  # prepared for another batch size
        backend.velocity(x_t.expand(2, -1, -1, -1, -1), sigma.expand(2), ready, cond)


def test_generate_prepares_each_section_once(backend, image, cond, monkeypatch):
    plan = hy.official_plan("f1", 2, window=2)
    calls = []
    original = type(backend).prepare_section
    monkeypatch.setattr(backend, "prepare_section", lambda c: calls.append(1) or original(backend, c))
    generate(backend, image, plan=plan, steps=2, cond=cond)
    assert len(calls) == len(plan.steps)


def test_map_context_without_groups_needs_x_t():
    plan = make_plan("vanilla", 9)
    context = pack(torch.zeros(1, 4, plan.total_frames, 6, 10), plan.steps[0], hy.KERNELS)
    context = dataclasses.replace(context, groups=[])
    with pytest.raises(ValueError, match="pass the noisy section x_t"):
        hy.map_context(context)
    x_t = torch.zeros(1, 4, len(plan.steps[0].generated), 6, 10)
    assert hy.map_context(context, x_t)["latents_clean"].shape == (1, 4, 1, 6, 10)  # a zero filler block


# -------------------------------------------------------------------- refused options
@pytest.mark.parametrize("option", [{"history_noise": 0.1}, {"history_guidance": 2.0}])
def test_generate_refuses_history_options_before_any_work(backend, image, cond, monkeypatch, option):
    """HunyuanVideo FramePack was trained with neither history noise nor history dropout."""
    monkeypatch.setattr(backend, "encode", lambda *a: pytest.fail("encoded before refusing"))
    name = next(iter(option))
    with pytest.raises(ValueError, match=name) as e:
        generate(backend, image, n_frames=9, steps=1, cond=cond, **option)
    assert "leave" in str(e.value)  # says what to do


def test_one_refusal_for_kernels_tails_and_pooled_groups():
    with pytest.raises(ValueError, match=r"step 3 uses kernel k8 .*it supports k1 \(1, 2, 2\)"):
        hy.check_supported("step 3", [hy.K1, Kernel.k(8)])
    with pytest.raises(ValueError, match="tail option 'tc'.*'td'"):
        hy.check_supported("a plan", tail="tc")
    with pytest.raises(ValueError, match="pooled and then embedded with k2"):
        hy.check_supported("a group", [hy.K4], embedded_with=hy.K2)
    hy.check_supported("the official layout", [hy.K1, hy.K2, hy.K4], "td")  # passes
    # a context packed for a backend without k4: its 4x group is pooled into k2, which diffusers cannot take
    plan = hy.official_plan("inverted_anti_drifting", 1, window=3)
    context = pack(torch.zeros(1, 4, plan.total_frames, 6, 10), plan.steps[0], {hy.K1, hy.K2})
    with pytest.raises(ValueError, match="pooled and then embedded with k2"):
        hy.map_context(context)


def test_offload_is_checked_in_one_place():
    assert hy.check_offload("auto") == "auto"
    with pytest.raises(ValueError, match="offload must be one of auto, none, model, group"):
        hy.check_offload("disk")
    with pytest.raises(ValueError, match="resolve 'auto' with choose_offload first"):
        hy.check_offload("auto", allow_auto=False)
    with pytest.raises(ValueError, match="on the CPU use offload='none'"):
        hy.check_offload("group", on_cpu=True)
    with pytest.raises(ValueError, match="on the CPU use offload='none'"):
        hy.backend_from_components({}, device="cpu", offload="model")
    with pytest.raises(ValueError, match="resolve 'auto'"):
        hy.backend_from_components({}, device="cpu", offload="auto")


def test_sampling_shift_follows_the_schedulers_config(backend, monkeypatch):
    from diffusers import FlowMatchEulerDiscreteScheduler

    custom = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_image_seq_len=128,
                                             max_image_seq_len=2048, base_shift=0.3, max_shift=1.0)
    monkeypatch.setattr(backend.pipe, "scheduler", custom)
    assert backend.sampling_shift(1000) == pytest.approx(
        dynamic_shift(1000, base_len=128, max_len=2048, base_shift=0.3, max_shift=1.0))
    monkeypatch.setattr(backend.pipe, "scheduler", FlowMatchEulerDiscreteScheduler(shift=7.0))
    assert backend.sampling_shift(1000) == 7.0  # a static shift, as hunyuanvideo-community's config


# --------------------------------------------------------------------- what a session runs
def test_choose_backend_without_weights_is_the_stand_in():
    choice = hy.choose_backend(None, seed=3)
    assert not choice.real and choice.backend.name == "hunyuan-tiny-random"
    assert "TINY RANDOM WEIGHTS" in choice.message and "no WEIGHTS_DIR given" in choice.message
    with pytest.raises(ValueError, match="offload must be one of"):
        hy.choose_backend(None, offload="disk")


def test_choose_backend_with_a_bad_folder_says_why(tmp_path):
    choice = hy.choose_backend(tmp_path / "nowhere")
    assert not choice.real and "cannot be used: no weights folder" in choice.message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallback")
def test_choose_backend_with_good_weights_but_no_gpu(tmp_path):
    choice = hy.choose_backend(_fake_layout(tmp_path / "w"))
    assert not choice.real and "no CUDA GPU" in choice.message


def test_load_first_frame(tmp_path):
    from PIL import Image

    world_frame = hy.load_first_frame(size=128)
    assert world_frame.shape == (128, 128, 3) and world_frame.dtype == np.float32
    assert 0 <= world_frame.min() and world_frame.max() <= 1
    Image.fromarray(np.full((50, 70, 3), 200, np.uint8)).save(tmp_path / "f.png")
    frame = hy.load_first_frame(tmp_path / "f.png")
    assert frame.shape == (48, 64, 3) and np.allclose(frame, 200 / 255)
    with pytest.raises(FileNotFoundError, match="no image at"):
        hy.load_first_frame(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="size >= 64"):
        hy.load_first_frame(size=32)
