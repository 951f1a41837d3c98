"""Per-section (timed) prompts and the end frame on the HunyuanVideo adapter (tiny random components).

The parser's rules and refusals; how plan sections map to seconds; that each section's model calls
get the embeddings of the prompt covering its middle, in generation order; that each distinct
prompt is encoded once; that bad input is refused before any model work.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from framepack_lab.generate import generate
from framepack_lab.models import hunyuan as hy
from framepack_lab.models.hunyuan.prompts import (TimedPrompt, is_timed, parse_timed_prompts, section_prompts,
                                                  section_seconds)
from framepack_lab.plan import make_plan

H, W = 48, 80
# sections of 3 latent frames at 30 fps: frames 1-3 play 1/30..13/30 s, 4-6 13/30..25/30 s, 7-9 25/30..37/30 s
TIMED = "[0s-0.4s] a cat walks; [0.4s-0.8s] a dog runs; [0.8s-2s] a bird flies"


@pytest.fixture(scope="module")
def backend():
    return hy.tiny_backend(seed=0, vae_tiling=False)


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def end_image():
    return (np.random.default_rng(1).random((H, W, 3)) * 255).astype(np.uint8)


# -------------------------------------------------------------------------------- the parser
def test_parse_timed_prompts():
    assert parse_timed_prompts("[0s-2s] a cat; [2s-4.5s] a dog") == (
        TimedPrompt(0.0, 2.0, "a cat"), TimedPrompt(2.0, 4.5, "a dog"))
    # any written order, units optional, new lines separate too, spaces trimmed
    assert parse_timed_prompts(" [2-3] b \n[0 - 2s]   a ") == (TimedPrompt(0.0, 2.0, "a"), TimedPrompt(2.0, 3.0, "b"))
    assert parse_timed_prompts("[0s-.5s] x") == (TimedPrompt(0.0, 0.5, "x"),)
    assert is_timed("  [0s-1s] a") and not is_timed("a cat [0s-1s]") and not is_timed(3)


@pytest.mark.parametrize("bad,why", [
    ("", "the string is empty"),
    (" ; \n", "the string is empty"),
    ("[0s-2s a cat", "unbalanced or stray brackets"),
    ("[0s-2s] a cat]", "unbalanced or stray brackets"),
    ("[0s-2s] a [big] cat", "unbalanced or stray brackets"),
    ("[0s-2s] a cat; a dog", "'a dog' does not start with a \\[START-END\\] range"),
    ("a cat [0s-2s]", "does not start with a \\[START-END\\] range"),
    ("[0s-two] a cat", "'two' in .* is not a time in seconds"),
    ("[0m-2m] a cat", "is not a time in seconds"),
    ("[0s 2s] a cat", "is not START-END"),
    ("[-1s-2s] a cat", "is not START-END"),
    ("[2s-2s] a cat", "ends at or before it starts \\(2 s <= 2 s\\)"),
    ("[3s-1s] a cat", "ends at or before it starts"),
    ("[0s-2s]   ", "has no text"),
    ("[1s-2s] a cat", "the first range starts at 1 s, not 0"),
    ("[0s-2s] a cat; [1s-3s] a dog", "\\[0s-2s\\] and \\[1s-3s\\] overlap"),
    ("[0s-2s] a cat; [2.5s-3s] a dog", "nothing covers 2 s to 2.5 s"),
])
def test_malformed_timed_prompts_are_refused(bad, why):
    with pytest.raises(ValueError, match=why) as e:
        parse_timed_prompts(bad)
    assert "[0s-2s] a cat walks; [2s-4s] a dog runs" in str(e.value)  # says what to write


def test_parser_refuses_a_non_string():
    with pytest.raises(ValueError, match="expected a string, got list"):
        parse_timed_prompts(["[0s-1s] a"])


# ------------------------------------------------------------------------ sections -> seconds
def test_section_seconds_follow_the_causal_vae_at_30_fps():
    plan = hy.official_plan("inverted_anti_drifting", 3, window=3)
    # generation order: the end first
    assert [section_seconds(s, 30) for s in plan.steps] == [(25 / 30, 37 / 30), (13 / 30, 25 / 30), (1 / 30, 13 / 30)]
    official = hy.official_plan("f1", 2)  # 9 latent frames = 36 pixel frames after the first = 1.2 s
    assert [section_seconds(s, 30) for s in official.steps] == [(1 / 30, 37 / 30), (37 / 30, 73 / 30)]
    with pytest.raises(ValueError, match="fps must be a positive number"):
        section_seconds(plan.steps[0], 0)


def test_section_prompts_in_generation_order():
    spans = parse_timed_prompts(TIMED)
    inv = hy.official_plan("inverted_anti_drifting", 3, window=3)
    assert section_prompts(spans, inv, 30) == ["a bird flies", "a dog runs", "a cat walks"]
    f1 = hy.official_plan("f1", 3, window=3)
    assert section_prompts(spans, f1, 30) == ["a cat walks", "a dog runs", "a bird flies"]
    anti = make_plan("anti_drifting", 10, "td_f1k1_g3_x_f1k1")  # endpoints first, then the middle
    assert [s.generated for s in anti.steps] == [(1, 2, 3), (7, 8, 9), (4, 5, 6)]
    assert section_prompts(spans, anti, 30) == ["a cat walks", "a bird flies", "a dog runs"]


def test_a_section_beyond_the_last_prompt_is_refused():
    spans = parse_timed_prompts("[0s-0.5s] a cat")
    with pytest.raises(ValueError, match=r"end at 0.5 s but step 0 .* 0.83-1.23 s \(middle 1.03 s\).*at least 2s"):
        section_prompts(spans, hy.official_plan("inverted_anti_drifting", 3, window=3), 30)


# ------------------------------------------------------------------------- on the backend
def _record_prompts(backend, monkeypatch):
    """Record the condition each velocity call gets."""
    seen = []
    original = type(backend).velocity
    monkeypatch.setattr(backend, "velocity", lambda x, s, ctx, cond=None: seen.append(cond) or original(
        backend, x, s, ctx, cond))
    return seen


@pytest.mark.parametrize("order,expected", [("inverted_anti_drifting", ["a bird flies", "a dog runs", "a cat walks"]),
                                            ("f1", ["a cat walks", "a dog runs", "a bird flies"])])
def test_each_section_gets_the_embeddings_of_its_prompt(backend, image, monkeypatch, order, expected):
    cond = backend.condition(TIMED, image, guidance=6.0)
    alone = {t: backend.condition(t, image, guidance=6.0) for t in expected}
    seen = _record_prompts(backend, monkeypatch)
    steps = 2
    generate(backend, image, plan=hy.official_plan(order, 3, window=3), steps=steps, seed=0, cond=cond)
    assert [c.prompt for c in seen] == [t for t in expected for _ in range(steps)]
    for c in seen:  # the very embeddings of that prompt alone, and the first frame's image embeddings
        torch.testing.assert_close(c.prompt_embeds, alone[c.prompt].prompt_embeds, rtol=0, atol=0)
        torch.testing.assert_close(c.pooled, alone[c.prompt].pooled, rtol=0, atol=0)
        torch.testing.assert_close(c.image_embeds, cond.image_embeds, rtol=0, atol=0)
        assert not c.spans and c.end_latent is None


def test_timed_prompts_change_the_video_and_one_prompt_matches_the_plain_one(backend, image):
    plan = hy.official_plan("inverted_anti_drifting", 2, window=3)
    run = lambda p: generate(backend, image, plan=plan, steps=2, seed=3,  # noqa: E731
                             cond=backend.condition(p, image, guidance=6.0)).latents
    plain = run("a cat walks")
    torch.testing.assert_close(run("[0s-5s] a cat walks"), plain, rtol=0, atol=0)
    assert (run("[0s-0.4s] a cat walks; [0.4s-5s] a dog runs") - plain).abs().max() > 1e-4


def test_each_distinct_prompt_is_encoded_once(backend, image, monkeypatch):
    texts = []
    original = type(backend)._encode_text
    monkeypatch.setattr(backend, "_encode_text", lambda t, n: texts.append(t) or original(backend, t, n))
    cond = backend.condition("[0-1] a cat; [1-2] a dog; [2-3] a cat", image)
    assert texts == ["a cat", "a dog"] and set(cond.texts) == {"a cat", "a dog"}
    assert cond.prompt == "[0-1] a cat; [1-2] a dog; [2-3] a cat"
    torch.testing.assert_close(cond.prompt_embeds, cond.texts["a cat"][0])  # the first span's, for display


def test_malformed_prompts_are_refused_before_any_model_work(backend, image, monkeypatch):
    for name in ("_encode_text", "_encode_image", "encode"):
        monkeypatch.setattr(backend, name, lambda *a, **k: pytest.fail("encoded before refusing"))
    with pytest.raises(ValueError, match="overlap"):
        backend.condition("[0s-2s] a cat; [1s-3s] a dog", image)
    with pytest.raises(ValueError, match="fps must be a positive number"):
        backend.condition("[0s-2s] a cat", image, fps=-30)


def test_uncovered_sections_are_refused_before_any_work(backend, image, monkeypatch):
    cond = backend.condition("[0s-0.5s] a cat", image)
    monkeypatch.setattr(backend, "encode", lambda *a: pytest.fail("encoded before refusing"))
    with pytest.raises(ValueError, match="extend the last range"):
        generate(backend, image, plan=hy.official_plan("inverted_anti_drifting", 3, window=3), steps=1, cond=cond)


def test_a_timed_condition_is_bound_to_a_plan_before_velocity(backend, image):
    from framepack_lab.packing import pack

    plan = hy.official_plan("f1", 1, window=3)
    cond = backend.condition("[0s-1s] a cat", image)
    context = pack(torch.zeros(1, 4, plan.total_frames, 6, 10), plan.steps[0], hy.KERNELS)
    with pytest.raises(ValueError, match="bind it to a plan first"):
        backend.velocity(torch.zeros(1, 4, 3, 6, 10), torch.ones(1), context, cond)
    assert backend.bind_condition(plan, cond)(plan.steps[0]).prompt == "a cat"


def test_section_table(backend, image, end_image):
    plan = hy.official_plan("inverted_anti_drifting", 3, window=3)
    rows = backend.section_table(plan, backend.condition(TIMED, image, last_image=end_image))
    assert rows == [
        {"step": 0, "frames": "7-9", "seconds": "0.83-1.23", "prompt": "a bird flies", "end frame": True},
        {"step": 1, "frames": "4-6", "seconds": "0.43-0.83", "prompt": "a dog runs", "end frame": False},
        {"step": 2, "frames": "1-3", "seconds": "0.03-0.43", "prompt": "a cat walks", "end frame": False}]


# ------------------------------------------------------------------------------ the end frame
def test_end_frame_reaches_the_first_section_only(backend, image, end_image, monkeypatch):
    cond = backend.condition("a cat walks", image, last_image=end_image)
    assert cond.end_latent.shape == (1, 4, 1, 6, 10)
    torch.testing.assert_close(cond.end_latent, backend.encode(torch.from_numpy(end_image)[None, None] / 255.0))
    clean = []
    hook = backend.transformer.register_forward_pre_hook(
        lambda m, a, kw: clean.append((kw["latents_clean"].clone(), kw["indices_latents_clean"].tolist())),
        with_kwargs=True)
    try:
        generate(backend, image, plan=hy.official_plan("inverted_anti_drifting", 2, window=3), steps=1, cond=cond)
    finally:
        hook.remove()
    (first, first_idx), (second, second_idx) = clean
    assert first_idx == [0, 7] and second_idx == [0, 4]  # anchor, then the slot right after the section
    torch.testing.assert_close(first[:, :, 1:], cond.end_latent)  # diffusers' last_image slot
    assert not torch.equal(second[:, :, 1:], cond.end_latent.expand_as(second[:, :, 1:]))  # generated frame 4


@pytest.mark.parametrize("order", ["f1", "vanilla", "anti_drifting"])
def test_end_frame_is_refused_for_other_orders_before_any_work(backend, image, end_image, monkeypatch, order):
    cond = backend.condition("a cat", image, last_image=end_image)
    monkeypatch.setattr(backend, "encode", lambda *a: pytest.fail("encoded before refusing"))
    plan = hy.official_plan(order, 2, window=3) if order == "f1" else make_plan(order, 9)
    with pytest.raises(ValueError, match=f"needs the 'inverted_anti_drifting' order.*order is '{order}'"):
        generate(backend, image, plan=plan, steps=1, cond=cond)


def test_end_frame_in_our_own_inverted_plan_takes_the_filler_slot(backend, image, end_image):
    """make_plan's inverted order drops empty blocks; map_context's 1x filler right after the first
    section is where the end frame goes."""
    cond = backend.condition("a cat", image, last_image=end_image)
    plan = make_plan("inverted_anti_drifting", 9, "f1k1_x_g4_f1k1f2k2_td")
    with_end = generate(backend, image, plan=plan, steps=2, seed=0, cond=cond).latents
    without = generate(backend, image, plan=plan, steps=2, seed=0,
                       cond=backend.condition("a cat", image)).latents
    assert (with_end - without).abs().max() > 1e-4


def test_end_frame_of_another_size_is_refused_before_encoding(backend, image, monkeypatch):
    monkeypatch.setattr(backend, "encode", lambda *a: pytest.fail("encoded before refusing"))
    with pytest.raises(ValueError, match=r"last_image is \(32, 80\).*first frame is \(48, 80\)"):
        backend.condition("a cat", image, last_image=np.zeros((32, 80, 3), np.uint8))
    with pytest.raises(ValueError, match="last_image must be an \\(H, W, 3\\) RGB image"):
        backend.condition("a cat", image, last_image=np.zeros((48, 80), np.uint8))


def test_end_frame_with_a_first_frame_of_another_size_says_what_to_do(backend, image, end_image):
    cond = backend.condition("a cat", image, last_image=end_image)
    other = np.zeros((32, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="last_image of the first frame's size"):
        generate(backend, other, plan=hy.official_plan("inverted_anti_drifting", 1, window=3), steps=1, cond=cond)
