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
