"""The generation panel, driven from Python as a reader would: set values, click, read outputs."""

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")

from framepack_lab import world
from framepack_lab.widgets import GeneratePanel, filmstrip


def make_panel(backend, **kw):
    kw = {"n_frames": 9, "steps": 2, "background": False, **kw}
    return GeneratePanel(backend, **kw)


def test_click_generates_and_shows_progress_strip_video_and_budget(backend):
    panel = make_panel(backend)
    panel.order.value = "vanilla"
    panel.seed.value = 3
    panel.generate_button.click()
    r = panel.result
    assert r is not None and r.plan.order == "vanilla" and r.seed == 3
    assert r.frames.shape == (9, 64, 64, 3)
    assert panel.progress.value == panel.progress.max == len(r.plan.steps)
    assert panel.strip.value[:4] == b"\x89PNG" and panel.budget.value[:4] == b"\x89PNG"
    assert "done" in panel.status.value and "vanilla" in panel.status.value
    assert any("<video" in o.get("data", {}).get("text/html", "") for o in panel.output.outputs)
    assert not panel.generate_button.disabled and panel.stop_button.disabled


def test_widget_values_reach_the_generator(backend):
    panel = make_panel(backend, n_frames=13)
    panel.schedule.value = "td_f4k1h8w8f2k1h4w4f2k1_g4"
    panel.order.value = "f1"
    panel.world_seed.value = world.HELDOUT_SEEDS.start + 5
    panel.generate_button.click()
    r = panel.result
    assert r.plan.schedule.name == "td_f4k1h8w8f2k1h4w4f2k1_g4" and r.plan.order == "f1"
    assert len(r.frames) == 13
    first = torch.from_numpy(world.video(world.HELDOUT_SEEDS.start + 5, 1))[None]  # (1, 1, H, W, 3)
    expected = backend.decode(backend.encode(first))[0, 0]
    assert np.allclose(r.frames[0], expected.numpy(), atol=1e-5)


def test_bad_schedule_is_reported_in_the_panel_not_raised(backend):
    panel = make_panel(backend)
    panel.schedule.value = "td_f16k3_g4"
    panel.generate_button.click()
    assert panel.result is None
    assert "k3" in panel.error and "error" in panel.status.value
    assert not panel.generate_button.disabled


def test_stop_between_sections(backend):
    panel = make_panel(backend, n_frames=21)
    stop_after = 2
    original = panel._on_section

    def on_section(event):
        original(event)
        if event.index + 1 == stop_after:
            panel.stop_button.click()

    panel._on_section = on_section
    panel.generate_button.click()
    r = panel.result
    assert r.stopped and len(r.section_seconds) == stop_after
    assert "stopped" in panel.status.value


def test_on_result_output_is_shown(backend):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def extra(result):
        fig, ax = plt.subplots()
        ax.plot(result.frames.mean(axis=(1, 2, 3)))
        return [fig, "a note"]

    panel = make_panel(backend, on_result=extra)
    panel.generate_button.click()
    kinds = [list(o.get("data", {})) for o in panel.output.outputs]
    assert any("image/png" in k for k in kinds)
    assert any(o.get("data", {}).get("text/plain") == "'a note'" for o in panel.output.outputs)


def test_background_click_runs_on_a_thread(backend):
    panel = make_panel(backend, background=True)
    panel.generate_button.click()
    panel.wait(60)
    assert panel.result is not None


def test_snapshot_is_static_html(backend):
    panel = make_panel(backend)
    assert "nothing generated" in panel.snapshot().data
    panel.run()
    html = panel.snapshot().data
    assert "data:image/png;base64," in html and "last run" in html


def test_prepare_hook_adds_generate_arguments(backend):
    seen = []

    def prepare(first):
        seen.append(first.shape)
        return {"shift": 2.5}

    panel = make_panel(backend, prepare=prepare)
    panel.generate_button.click()
    assert seen == [(64, 64, 3)] and panel.result.info["shift"] == 2.5


def test_prepare_hook_errors_show_in_the_panel(backend):
    def prepare(first):
        raise ValueError("no prompt given")

    panel = make_panel(backend, prepare=prepare)
    panel.generate_button.click()
    assert panel.result is None and "no prompt given" in panel.status.value


def test_filmstrip_tiles_frames():
    frames = np.zeros((10, 4, 6, 3))
    frames[::2] = 1.0
    strip = filmstrip(frames, every=2, columns=3)
    assert strip.shape == (2 * 4, 3 * 6, 3)
    assert strip[:4].min() == 1.0


# ------------------------------------------------------------------ bad input, as a new user types it
import dataclasses  # noqa: E402

from framepack_lab.plan import ORDERS, make_plan  # noqa: E402
from framepack_lab.schedule import PRESETS, context_length  # noqa: E402
from framepack_lab.widgets import ContextLengthPanel, SchedulePanel  # noqa: E402

KERNELS_OF_A_SMALL_MODEL = ("k1", "k2")


def model_without_k4(backend):
    """The tiny backend as a model that only has k1 and k2 embeddings (refuses other kernels up front,
    as the HunyuanVideo backend does)."""
    small = dataclasses.replace(backend)

    def check_plan(plan):
        for step in plan.steps:
            for g in step.groups:
                if g.tail is None and g.kernel.name not in KERNELS_OF_A_SMALL_MODEL:
                    raise ValueError(f"this model has no patch embedding for {g.kernel.name}; use "
                                     f"{' or '.join(KERNELS_OF_A_SMALL_MODEL)}")

    small.check_plan = check_plan
    return small


def sections_of_four_only(order, n_frames, schedule):
    """A plan factory like the official layouts': it builds only 1 + 4k frames and two orders."""
    if order not in ("vanilla", "f1"):
        raise ValueError(f"this layout has no {order} loop; use vanilla or f1")
    if (n_frames - 1) % 4:
        raise ValueError(f"this layout needs 1 + 4k frames, got {n_frames}; use {1 + 4 * ((n_frames - 1) // 4)}")
    return make_plan(order, n_frames, schedule)


# (what the user sets, the bad value, a piece of the message, the value that fixes it)
GENERATE_BAD_INPUT = [
    ("schedule", "td_f16k3_g4", "k3: N must be a power of two", ""),
    ("schedule", "hello", "exactly one generated part", "td_f2k2f1k1_g4"),
    ("schedule", "f16k4_g4_g4", "found 2", "td_f4k2f2k1_g4"),
    ("schedule", "g0", "at least one frame", "td_f2k1_g2"),
    ("schedule", "td_f1k4f1k1_g4", "no patch embedding for k4", "td_f4k2f2k1_g4"),
    ("n_frames", 11, "needs 1 + 4k frames", 9),
    ("order", "anti_drifting", "no anti_drifting loop", "vanilla"),
    ("seed", -1, "seed must be a whole number", 0),
    ("seed", 2**64, "seed must be a whole number", 7),
]


@pytest.mark.parametrize("attr,bad,message,fix", GENERATE_BAD_INPUT,
                         ids=[f"{a}={b!r}"[:40] for a, b, _, _ in GENERATE_BAD_INPUT])
def test_generate_panel_reports_bad_input_and_recovers(backend, attr, bad, message, fix):
    panel = make_panel(model_without_k4(backend), order="vanilla", plan_factory=sections_of_four_only)
    getattr(panel, attr).value = bad
    panel.generate_button.click()
    assert panel.result is None
    assert message in panel.error and "error" in panel.status.value and message in panel.status.value
    assert not panel.generate_button.disabled and panel.stop_button.disabled  # not a dead panel
    assert message in panel.snapshot().data
    getattr(panel, attr).value = fix
    panel.generate_button.click()
    assert panel.error is None and panel.result is not None and "done" in panel.status.value


def test_generate_panel_error_after_a_good_run_replaces_it(backend):
    panel = make_panel(backend)
    panel.generate_button.click()
    assert panel.result is not None
    panel.schedule.value = "td_f16k3_g4"
    panel.generate_button.click()
    assert panel.result is None and "k3" in panel.snapshot().data


def test_generate_panel_shows_unexpected_errors_of_a_click_instead_of_raising(backend):
    def broken(first):
        raise RuntimeError("boom")

    panel = make_panel(backend, prepare=broken)
    panel.generate_button.click()  # no traceback
    assert "unexpected RuntimeError: boom" in panel.status.value and not panel.generate_button.disabled
    with pytest.raises(RuntimeError):  # called from code, a bug still surfaces
        panel.run()
    panel.prepare = None
    panel.generate_button.click()
    assert panel.result is not None


def test_generate_panel_plan_factory_gets_the_widget_values(backend):
    seen = []

    def factory(order, n_frames, schedule):
        seen.append((order, n_frames, schedule))
        return make_plan(order, n_frames, schedule)

    panel = make_panel(backend, n_frames=13, plan_factory=factory)
    panel.order.value, panel.schedule.value = "anti_drifting", "  td_f4k2f2k1_g4_x_f1k1 "
    panel.generate_button.click()
    assert seen == [("anti_drifting", 13, "td_f4k2f2k1_g4_x_f1k1")]
    panel.schedule.value = ""
    panel.generate_button.click()
    assert seen[-1] == ("anti_drifting", 13, None)  # empty box: the order's default
    assert panel.result.plan.order == "anti_drifting"


def test_generate_panel_gap_box_sets_the_inverted_orders_rope_gap(backend):
    from framepack_lab.widgets import official_plan_factory

    panel = make_panel(backend, n_frames=33, order="vanilla")
    assert panel.gap.disabled and panel.gap.value == "official"
    panel.order.value = "inverted_anti_drifting"
    assert not panel.gap.disabled
    panel.generate_button.click()
    assert panel.result.plan == make_plan("inverted_anti_drifting", 33)
    panel.gap.value = "true"
    panel.generate_button.click()
    assert panel.error is None and panel.result.plan == make_plan("inverted_anti_drifting", 33, gap="true")
    assert panel.result.plan != make_plan("inverted_anti_drifting", 33)  # 8 sections: the gaps differ
    assert "RoPE gap true" in panel.status.value
    panel.order.value = "vanilla"  # greyed out and ignored for the orders without a gap
    assert panel.gap.disabled
    panel.generate_button.click()
    assert panel.error is None and panel.result.plan.order == "vanilla" and "RoPE gap" not in panel.status.value
    # the released layout has only the official gap: refused in the panel, nothing generated
    official = make_panel(backend, order="inverted_anti_drifting", gap=6, plan_factory=official_plan_factory)
    official.n_frames.value = 10
    official.generate_button.click()
    assert official.result is None and "official loop's RoPE gap" in official.error
    with pytest.raises(ValueError, match="gap box offers"):
        make_panel(backend, gap=3)
    with pytest.raises(ValueError, match="gap must be"):
        make_panel(backend, gap="far")


def test_generate_panel_shows_a_trail_checkpoint_a_first_frame_with_trails(backend):
    import dataclasses

    seed = world.HELDOUT_SEEDS.start
    assert np.array_equal(make_panel(backend)._first(), world.video(seed, 1, trail=False)[0])
    trailed = make_panel(dataclasses.replace(backend, trail=True))  # trained on worlds with trails
    assert np.array_equal(trailed._first(), world.video(seed, 1, trail=True)[0])
    assert not np.array_equal(trailed._first(), make_panel(backend)._first())  # the echoes are drawn at frame 0


def test_generate_panel_refuses_start_values_outside_its_widgets(backend):
    with pytest.raises(ValueError, match="n_frames=500"):
        GeneratePanel(backend, n_frames=500)
    with pytest.raises(ValueError, match="unknown sampling order"):
        GeneratePanel(backend, order="backwards")
    with pytest.raises(ValueError, match="seed must be"):
        GeneratePanel(backend, seed=-3)


# ------------------------------------------------------------------------------ SchedulePanel
def test_schedule_panel_draws_diagram_plan_and_tokens():
    panel = SchedulePanel("geometric", order="f1", n_frames=17)
    assert panel.error is None and panel.schedule.name == PRESETS["geometric"].name
    assert panel.plan.order == "f1" and panel.plan.n_frames == 17
    for image in (panel.diagram, panel.plan_figure, panel.tokens):
        assert image.value[:4] == b"\x89PNG"
    h, w = panel.latent_hw
    assert f"{max(panel.plan.tokens_per_step(h, w)):,} tokens" in panel.message.value
    assert panel.snapshot().data.count("data:image/png;base64,") == 3


def test_schedule_panel_preset_and_name_box_follow_each_other():
    panel = SchedulePanel("temporal_kernel")
    assert panel.preset.value == "temporal_kernel" and panel.name.value == PRESETS["temporal_kernel"].name
    panel.preset.value = "symmetric"
    assert panel.name.value == PRESETS["symmetric"].name and panel.schedule.name == PRESETS["symmetric"].name
    panel.name.value = "td_f4k1h8w8f2k1_g4"  # no preset's name
    assert panel.preset.value is None and panel.schedule.name == "td_f4k1h8w8f2k1_g4"
    panel.name.value = "inverted"  # a preset key works in the box too
    assert panel.preset.value == "inverted" and panel.schedule.name == PRESETS["inverted"].name


@pytest.mark.parametrize("order", ORDERS)
def test_schedule_panel_follows_order_and_length(order):
    panel = SchedulePanel()
    panel.order.value = order
    panel.n_frames.value = 40
    assert panel.plan.order == order and panel.plan.n_frames == 40 and panel.error is None


SCHEDULE_BAD_INPUT = [
    ("name", "td_f16k3_g4", "k3: N must be a power of two", "td_f16k4_g4"),
    ("name", "", "empty schedule name", "geometric"),
    ("name", "td_f16k4f4k2", "needs exactly one generated part", "td_f16k4f4k2_g4"),
    ("name", "f1k1_x_x_g4", "", "f1k1_x_g4"),
    ("n_frames", 11, "needs 1 + 4k frames", 9),
    ("order", "inverted_anti_drifting", "no inverted_anti_drifting loop", "f1"),
]


@pytest.mark.parametrize("attr,bad,message,fix", SCHEDULE_BAD_INPUT,
                         ids=[f"{a}={b!r}" for a, b, _, _ in SCHEDULE_BAD_INPUT])
def test_schedule_panel_reports_bad_input_and_recovers(attr, bad, message, fix):
    panel = SchedulePanel("temporal_kernel", order="vanilla", n_frames=9, plan_factory=sections_of_four_only)
    getattr(panel, attr).value = bad  # no exception reaches the caller
    assert panel.error and message in panel.error
    assert "error" in panel.message.value and panel.plan is None
    assert panel.diagram.value == panel.plan_figure.value == panel.tokens.value == b""
    getattr(panel, attr).value = fix
    assert panel.error is None and panel.plan is not None and panel.tokens.value[:4] == b"\x89PNG"


def test_schedule_panel_names_bugs_as_bugs():
    def broken(order, n_frames, schedule):
        raise KeyError("oops")

    panel = SchedulePanel(plan_factory=broken)
    assert panel.error.startswith("unexpected KeyError") and "error" in panel.message.value


# -------------------------------------------------------------------------- ContextLengthPanel
def test_context_length_panel_shows_eq2_eq3_and_follows_the_sliders():
    panel = ContextLengthPanel(T_max=32)
    assert panel.error is None and panel.figure.value[:4] == b"\x89PNG"
    panel.lam.value, panel.T.value, panel.S.value, panel.L_f.value = 3.0, 8, 2, 1024
    assert f"L = {context_length(1024, 3.0, 8, 2):,.0f} tokens" in panel.text.value
    assert "Eq. 3" in panel.text.value
    panel.log_y.value = True
    assert panel.error is None and panel.figure.value[:4] == b"\x89PNG"


# a slider cannot hold a bad value: typed or set out of range, it stops at its end, and the
# panel still shows a valid equation
CONTEXT_EXTREMES = [("lam", 0.5), ("lam", 1.0), ("lam", 99.0), ("T", -4), ("T", 10_000), ("S", 0),
                    ("S", 1_000), ("L_f", -1), ("L_f", 10**9)]


@pytest.mark.parametrize("attr,value", CONTEXT_EXTREMES, ids=[f"{a}={v}" for a, v in CONTEXT_EXTREMES])
def test_context_length_panel_inputs_never_break_it(attr, value):
    panel = ContextLengthPanel(T_max=32)
    slider = getattr(panel, attr)
    slider.value = value
    assert slider.min <= slider.value <= slider.max
    assert panel.error is None and "Eq. 2" in panel.text.value and panel.figure.value[:4] == b"\x89PNG"


def test_context_length_panel_refuses_start_values_outside_its_sliders():
    with pytest.raises(ValueError, match="lam=1.0"):
        ContextLengthPanel(lam=1.0)
    with pytest.raises(ValueError, match="T=40"):
        ContextLengthPanel(T_max=32, T=40)
    with pytest.raises(ValueError, match="T_max"):
        ContextLengthPanel(T_max=0)


# ------------------------------------------------------------------ the official layout's plan factory
from framepack_lab.widgets import official_plan_factory  # noqa: E402

OFFICIAL_BAD_INPUT = [
    ("n_frames", 12, "use 10 or 19", 10),
    ("n_frames", 5, "got 5; use 10", 10),
    ("order", "vanilla", "loops for the orders", "f1"),
    ("schedule", "td_f4k2f2k1_g4", "fixed schedule", ""),
]


@pytest.mark.parametrize("attr,bad,message,fix", OFFICIAL_BAD_INPUT,
                         ids=[f"{a}={b!r}" for a, b, _, _ in OFFICIAL_BAD_INPUT])
def test_generate_panel_with_the_official_layout_reports_bad_input_and_recovers(backend, attr, bad, message, fix):
    panel = make_panel(backend, order="inverted_anti_drifting", n_frames=10, plan_factory=official_plan_factory)
    getattr(panel, attr).value = bad
    panel.generate_button.click()
    assert panel.result is None and message in panel.error and message in panel.status.value
    getattr(panel, attr).value = fix
    panel.generate_button.click()
    r = panel.result
    assert panel.error is None and r is not None and r.plan.schedule.generated == 9 and len(r.frames) == 10


def test_official_plan_factory_takes_the_layouts_own_schedule():
    plan = official_plan_factory("inverted_anti_drifting", 19, "official_inverted")
    assert plan.n_frames == 19 and plan.schedule.name == PRESETS["official_inverted"].name


# ------------------------------------------------ device and wall time, snapshots, the live filmstrip
import re  # noqa: E402

from framepack_lab.runtime import describe_device  # noqa: E402
from framepack_lab.widgets import LiveFilmstrip, filmstrip_caption  # noqa: E402


def test_status_line_and_snapshot_say_which_device_ran_and_how_long(backend):
    panel = make_panel(backend)
    panel.run()
    status = panel.status.value
    assert f"on {describe_device(backend)}" in status and "on cpu" in status
    seconds = float(status.split(" sections in ")[1].split(" s on ")[0])
    assert 0 <= seconds < 600 and re.search(r"sections in \d+\.\d\d s on cpu", status)
    assert status in panel.snapshot().data


def test_section_status_says_the_device_too(backend):
    panel = make_panel(backend)
    seen = []
    original = panel._on_section

    def on_section(event):
        original(event)
        seen.append(panel.status.value)

    panel._on_section = on_section
    panel.run()
    assert seen and all(" s on cpu" in s for s in seen)


def test_snapshot_keeps_what_the_panel_showed_under_the_video(backend):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    def extra(result):
        fig, ax = plt.subplots()
        ax.plot(result.frames.mean(axis=(1, 2, 3)))
        return [fig, pd.DataFrame({"delta": [0.125]}, index=["clarity"]), "a note"]

    panel = make_panel(backend, on_result=extra)
    panel.run()
    html = panel.snapshot().data
    assert html.count("data:image/png;base64,") == 3  # token budget, filmstrip, the curve
    assert "<table" in html and "clarity" in html and "0.125" in html  # the table under the video
    assert "<pre>&#x27;a note&#x27;</pre>" in html  # as the notebook shows it: its repr, escaped
    assert "<video" in html
    assert "every 4th frame of 9 (frames 0, 4, 8), left to right" in html  # the filmstrip's caption
    panel.on_result = None
    panel.run()  # a new run replaces the old extras
    assert "clarity" not in panel.snapshot().data and "a note" not in panel.snapshot().data


def test_filmstrip_caption_says_what_it_samples():
    assert filmstrip_caption(64) == ("every 4th frame of 64 (frames 0, 4, ..., 60), left to right, top to "
                                     "bottom, 8 per row")
    assert filmstrip_caption(9) == "every 4th frame of 9 (frames 0, 4, 8), left to right"
    assert filmstrip_caption(5, every=2, what="latent frame") == \
        "every 2nd latent frame of 5 (latent frames 0, 2, 4), left to right"
    frames = np.zeros((64, 4, 4, 3))
    strip = filmstrip(frames)
    assert strip.shape == (2 * 4, 8 * 4, 3)  # 16 frames: 2 rows of 8, as the caption says


def test_live_filmstrip_decodes_each_sampled_frame_once_and_ends_as_the_final_strip(backend):
    from framepack_lab.generate import generate

    decoded = []

    def counting_decode(latents):
        decoded.append(latents.shape[0] * latents.shape[2])
        return backend.decode(latents)

    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    live = LiveFilmstrip(counting_decode, 17)
    snapshots = []

    def on_section(event):
        if live.update(event.latents, event.known):
            snapshots.append(live.image())

    r = generate(backend, first, n_frames=17, order="inverted_anti_drifting", steps=2, callback=on_section)
    assert sum(decoded) == len(live.sampled) == 5  # frames 0, 4, 8, 12, 16: each decoded once
    np.testing.assert_allclose(live.image(), filmstrip(r.frames), atol=1e-5)
    assert (snapshots[0] == 0.5).any()  # not generated yet: grey
    assert live.caption.startswith("every 4th latent frame of 17")


def test_live_redraws_are_throttled_but_the_last_section_always_draws(backend):
    panel = make_panel(backend, n_frames=21)
    panel.LIVE_REDRAW_S = 1e9  # after the first section, only the last one redraws
    values = []
    orig = panel._on_section

    def on_section(event):
        before = panel.strip.value
        orig(event)
        values.append(panel.strip.value is not before)

    panel._on_section = on_section
    panel.run()
    assert values[0] and values[-1] and not any(values[1:-1])
    assert len(values) == len(panel.result.plan.steps) > 2


def test_describe_device():
    assert describe_device("cpu") == "cpu"
    assert describe_device(torch.device("cpu")) == "cpu"
    assert describe_device(torch.nn.Linear(2, 2)) == "cpu"
    with pytest.raises(ValueError, match="cannot tell which device"):
        describe_device(object())
    with pytest.raises(ValueError, match="unknown device"):
        describe_device("gpu7")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="names a CUDA device: needs a GPU")
def test_describe_device_names_the_gpu():
    name = describe_device("cuda")
    assert name.startswith("cuda:0 (") and torch.cuda.get_device_name(0) in name


def test_panel_with_a_backend_that_names_no_device_says_so(backend):
    class NoDevice:
        def __getattr__(self, name):
            if name == "device":
                raise AttributeError(name)
            return getattr(backend, name)

    panel = make_panel(NoDevice())
    panel.run()
    assert "an unnamed device (NoDevice has no .device)" in panel.status.value
