"""TrainPanel: a few steps on the smoke preset draw the loss curve and sample filmstrips; Stop
leaves a checkpoint that resumes to exactly the uninterrupted run; the export loads and generates."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from framepack_lab import world as W
from framepack_lab.generate import generate
from framepack_lab.models.tiny import TinyBackend
from framepack_lab.train import load_preset, train
from framepack_lab.widgets import GeneratePanel, TrainPanel

PNG = b"\x89PNG"


def smoke(steps=5, **dit):
    cfg = load_preset("smoke")
    cfg["dit"].update(steps=steps, **dit)
    return cfg


def panel(cfg, out, **kw):
    kw = {"sample_every": 2, "sample_worlds": 2, "sample_frames": 9, "sample_steps": 1, "background": False, **kw}
    return TrainPanel(cfg, out, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    p = panel(smoke(steps=3), tmp_path_factory.mktemp("panel"))
    path = p.run()
    return p, path


def test_a_few_steps_draw_the_loss_curve_and_filmstrips(trained):
    p, path = trained
    assert path == p.trainer.out / "tiny"
    assert [s for s, _, _ in p.losses] == [1, 2, 3]
    assert all(np.isfinite([loss for _, loss, _ in p.losses]))
    assert p.losses[0][2] == p.losses[0][1]  # the running mean starts at the first loss
    assert bytes(p.curve.value).startswith(PNG)
    # every sample_every steps, and once more at the end
    assert [s for s, _ in p.samples] == [2, 3]
    H = W.SIZE
    assert p.samples[-1][1].shape == (2 * H, 5 * H, 3)  # 2 worlds x every 2nd of 9 frames
    assert bytes(p.strip.value).startswith(PNG)
    assert p.progress.value == 3 and p.progress.max == 3
    assert p.status.value.startswith("done: step 3/3") and " on cpu (" in p.status.value
    assert p.trainer.stopped is False and p.error is None
    html = p.snapshot().data
    assert "loss curve" in html and html.count("<figure") == 2 and "step 3" in html


def test_the_export_loads_and_generates_in_a_generate_panel(trained):
    p, _ = trained
    be = p.backend()
    assert isinstance(be, TinyBackend) and be.model.config.width == 32
    r = generate(be, W.video(W.HELDOUT_SEEDS[0], 1)[0], n_frames=9, steps=1, order="vanilla")
    assert r.frames.shape == (9, 64, 64, 3) and np.isfinite(r.frames).all()
    gp = GeneratePanel(be, n_frames=9, steps=1, order="vanilla", background=False)
    assert gp.run() is not None and gp.error is None
    # the samples used the EMA weights that were exported (fp16 in the export)
    exported = load_file(str(p.trainer.out / "tiny" / "model.safetensors"))
    for k, v in p.trainer.ema.state_dict().items():
        assert torch.equal(exported[f"dit.{k}"], v.half()), k


def test_stop_leaves_a_checkpoint_that_resumes_to_the_uninterrupted_run(tmp_path):
    cfg = smoke(steps=7)
    train(cfg, tmp_path / "straight", progress=False)

    p = panel(cfg, tmp_path / "stopped", sample_every=100)
    hook = p.trainer.on_step

    def press_stop_after_step_3(info):
        hook(info)
        if info["step"] == 3:
            p.stop_button.click()

    p.trainer.on_step = press_stop_after_step_3
    p.run()
    assert p.trainer.stopped and [s for s, _, _ in p.losses] == [1, 2, 3]
    assert "stopped at step 3/7" in p.status.value and "resume=True" in p.status.value
    assert json.loads((tmp_path / "stopped" / "state.json").read_text())["step"] == 3
    assert [s for s, _ in p.samples] == [3]  # the end of a stopped run is sampled too

    again = panel(cfg, tmp_path / "stopped", sample_every=100, resume=True)
    again.run()
    assert [s for s, _, _ in again.losses] == [4, 5, 6, 7]
    a = load_file(str(tmp_path / "straight" / "state.safetensors"))
    b = load_file(str(tmp_path / "stopped" / "state.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        if not k.startswith("rng."):
            assert torch.equal(a[k], b[k]), k
    assert torch.equal(a["rng.torch"], b["rng.torch"])


def test_a_finished_panel_refuses_to_train_again(trained):
    p, _ = trained
    assert p.run() is None
    assert "already reached its 3 DiT steps" in p.error and "error:" in p.status.value


def test_bad_input_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown training preset 'laptop'.*cpu_hour"):
        TrainPanel("laptop", tmp_path)
    with pytest.raises(ValueError, match="sample_worlds must be a whole number from 1 to 8, got 0"):
        panel(smoke(), tmp_path, sample_worlds=0)
    with pytest.raises(ValueError, match="sample_frames must be a whole number >= 5"):
        panel(smoke(), tmp_path, sample_frames=2)
    with pytest.raises(ValueError, match="unknown sampling order 'sideways'"):
        panel(smoke(), tmp_path, sample_order="sideways")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        panel(smoke(), tmp_path, device="gpu0")
    for bad in (0, -1, "5", float("inf")):
        with pytest.raises(ValueError, match="time budget must be a positive number of minutes"):
            panel(smoke(), tmp_path, max_minutes=bad)
    p = panel(smoke(), tmp_path / "o")
    with pytest.raises(ValueError, match="press Train"):
        p.backend()
    assert not (tmp_path / "o").exists()  # nothing written yet


def test_a_time_budget_stops_with_a_resumable_checkpoint(tmp_path, monkeypatch):
    from framepack_lab import train as T

    clock = iter(range(0, 10_000, 30))  # every look at the clock: 30 s later
    monkeypatch.setattr(T.time, "monotonic", lambda: next(clock))
    p = panel(smoke(steps=50), tmp_path, max_minutes=2)  # 120 s: the deadline passes after a few steps
    p.run()
    t = p.trainer
    assert t.stopped and 0 < t.step_count < 50
    assert "2-minute budget" in p.status.value and "resume=True" in p.status.value
    assert (tmp_path / "state.safetensors").exists() and (tmp_path / "tiny" / "model.safetensors").exists()


def test_the_cli_stops_at_its_time_budget(tmp_path, monkeypatch):
    from framepack_lab import train as T

    real = T.time_budget
    monkeypatch.setattr(T, "time_budget", lambda minutes: (real(minutes), lambda: True)[1])  # already out of time
    T.main(["--preset", "smoke", "--out", str(tmp_path), "--max-minutes", "1", "--no-progress"])
    assert json.loads((tmp_path / "state.json").read_text())["step"] == 0  # stopped before the first DiT step
    assert (tmp_path / "tiny" / "model.safetensors").exists()
    with pytest.raises(SystemExit):
        T.main(["--preset", "smoke", "--out", str(tmp_path / "x"), "--max-minutes", "-3"])
    assert not (tmp_path / "x").exists()


def test_a_click_shows_errors_in_the_panel_not_a_traceback(tmp_path, monkeypatch):
    p = panel(smoke(), tmp_path)
    monkeypatch.setattr(p.trainer, "setup", lambda: (_ for _ in ()).throw(ValueError("the bank is empty")))
    p.train_button.click()
    assert p.error == "the bank is empty" and "error: the bank is empty" in p.status.value
    assert not p.train_button.disabled and p.stop_button.disabled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the CPU path is tested above)")
def test_trains_stops_and_resumes_on_cuda(tmp_path):
    p = panel(smoke(steps=4), tmp_path, device="cuda", sample_every=100)
    hook = p.trainer.on_step
    p.trainer.on_step = lambda info: (hook(info), info["step"] == 2 and p.stop())
    p.run()
    assert p.trainer.stopped and p.trainer.step_count == 2 and "cuda" in p.status.value
    again = panel(smoke(steps=4), tmp_path, device="cuda", sample_every=100, resume=True)
    again.run()  # the AdamW moments are loaded onto the GPU
    assert again.trainer.step_count == 4 and np.isfinite([loss for _, loss, _ in again.losses]).all()
    assert again.backend().device.type == "cuda"
