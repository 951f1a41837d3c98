"""The training loop end to end on a tiny config: export, load, generate, resume, CLI; task
sampling bounds; the loss overfits one batch."""

import json
import random
import shutil

import numpy as np
import pytest
import torch

from conftest import tiny_config
from framepack_lab import world as W
from framepack_lab.generate import generate
from framepack_lab.models.tiny import TinyBackend, TinyFramePack, load_tiny
from framepack_lab.plan import ORDERS
from framepack_lab.train import DEFAULT_CONFIG, load_config, main, sample_task, train, training_loss


def tiny_train_config() -> dict:
    cfg = json.loads(DEFAULT_CONFIG.read_text())
    cfg["model"].update(width=32, depth=1, heads=2, rope_axes=[4, 6, 6], ae_width=8)
    cfg["ae"].update(steps=2, batch=4)
    # fewer occluded videos and no K = 1024 codebook than shipped: they cost ~10 s per training run here
    cfg["data"].update(videos=4, frames=40, occluded_videos=4, codebook_ks=[16, 64, 256])
    cfg["dit"].update(steps=3, batch=2)
    cfg["checkpoint_every"] = 2
    return cfg


def log_lines(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    path = train(tiny_train_config(), out, steps=3, progress=False)
    return out, path


def test_train_exports_a_loadable_checkpoint(trained):
    out, path = trained
    assert path == out / "tiny"
    for f in ("tiny/model.safetensors", "tiny/config.json", "state.safetensors", "state.json",
              "autoencoder.safetensors", "autoencoder.json", "log.jsonl"):
        assert (out / f).exists(), f
    cfg = json.loads((path / "config.json").read_text())
    rec = cfg["training_record"]
    assert rec["steps"] == 3 and rec["batch"] == 2 and rec["device"] == "cpu"
    assert rec["config"] == tiny_train_config()
    assert rec["autoencoder"]["steps"] == 2 and np.isfinite(rec["autoencoder"]["heldout_psnr_db"])
    assert np.isfinite(rec["final_loss_ema"])
    assert cfg["model"]["width"] == 32 and cfg["model"]["rope_axes"] == [4, 6, 6]
    assert json.loads((out / "state.json").read_text())["step"] == 3

    be = load_tiny(path)
    assert isinstance(be, TinyBackend) and be.model.config == tiny_config(history_noise=True, hidden_time_max=96,
                                                                           image_tokens=True)
    # the latent statistics of the bank were set (not the identity defaults)
    assert not torch.equal(be.autoencoder.latent_std, torch.ones(4))
    first = W.video(W.HELDOUT_SEEDS[1], 1)[0]
    r = generate(be, first, n_frames=9, steps=2, order="vanilla")
    assert r.frames.shape == (9, 64, 64, 3) and np.isfinite(r.frames).all()


def test_resume_with_another_model_section_is_refused_with_what_differs(trained, tmp_path):
    out0, _ = trained
    out = tmp_path / "run"
    shutil.copytree(out0, out)
    cfg = tiny_train_config()
    cfg["model"]["hidden_time_max"] = 0  # a part the saved model has and this config lacks
    with pytest.raises(ValueError, match="hidden_mlp differ.*hidden_time_max"):
        train(cfg, out, resume=True, steps=4, progress=False)
    assert json.loads((out / "state.json").read_text())["step"] == 3  # nothing trained or overwritten


def test_resume_continues_from_the_saved_step_via_cli(trained, tmp_path):
    out0, _ = trained
    out = tmp_path / "run"
    shutil.copytree(out0, out)
    n_ae = sum(d["stage"] == "ae" for d in log_lines(out))
    n_lines = len(log_lines(out))
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(tiny_train_config()))
    main(["--config", str(cfg_path), "--out", str(out), "--steps", "5", "--resume", "--no-progress"])
    assert json.loads((out / "state.json").read_text())["step"] == 5
    new = log_lines(out)[n_lines:]
    assert sum(d["stage"] == "ae" for d in log_lines(out)) == n_ae  # autoencoder not re-trained
    assert {"stage": "dit", "params": new[0]["params"], "start": 3} == new[0]
    assert json.loads((out / "tiny" / "config.json").read_text())["training_record"]["steps"] == 5
    load_tiny(out / "tiny")


def test_resume_at_the_final_step_restores_the_same_weights(trained, tmp_path):
    from safetensors.torch import load_file

    out0, _ = trained
    out = tmp_path / "run"
    shutil.copytree(out0, out)
    train(tiny_train_config(), out, resume=True, steps=3, progress=False)
    before, after = load_file(str(out0 / "tiny" / "model.safetensors")), load_file(str(out / "tiny" / "model.safetensors"))
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k


def test_cli_trains_from_scratch(tmp_path, capsys):
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(tiny_train_config()))
    main(["--config", str(cfg_path), "--out", str(tmp_path / "o"), "--steps", "2", "--no-progress"])
    assert "exported" in capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "state.json").read_text())["step"] == 2
    assert (tmp_path / "o" / "tiny" / "model.safetensors").exists()


def test_missing_config_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="tiny_train.json"):
        load_config(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError):
        main(["--config", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o"), "--no-progress"])


def test_shipped_config_loads():
    cfg = load_config(DEFAULT_CONFIG)
    assert {"seed", "model", "ae", "data", "dit", "checkpoint_every"} <= set(cfg)


@pytest.mark.parametrize("bank_frames", [40, 97])
def test_sample_task_fits_the_bank(bank_frames):
    rng = random.Random(0)
    orders = set()
    for _ in range(200):
        order, sched, plan, step = sample_task(rng, bank_frames)
        orders.add(order)
        assert plan.order == order and step in plan.steps and sched == plan.schedule
        assert plan.total_frames <= bank_frames
        assert all(0 <= f < plan.total_frames for f in step.context_frames)
        assert all(0 < f < plan.total_frames for f in step.generated)
        assert not set(step.generated) & set(step.context_frames)
    assert orders == set(ORDERS)


@pytest.mark.parametrize("gap", ["true", 6])
def test_sample_task_trains_the_inverted_order_at_its_configured_gap(gap):
    """dit.inverted_gap sets the inverted order's plans (and only its); the draws are the same as
    without it, so a config without the key trains exactly as before."""
    from framepack_lab.plan import inverted_anti_drifting, make_plan

    plain, gapped = random.Random(5), random.Random(5)
    seen = set()
    for _ in range(200):
        a = sample_task(plain, 97, {})
        b = sample_task(gapped, 97, {"inverted_gap": gap})
        assert (a.order, a.schedule, a.step.index) == (b.order, b.schedule, b.step.index)
        seen.add(a.order)
        if a.order == "inverted_anti_drifting":
            assert b.plan == inverted_anti_drifting(a.plan.n_frames, a.schedule, gap=gap)
        else:
            assert b.plan == a.plan == make_plan(a.order, a.plan.n_frames, a.schedule)
    assert "inverted_anti_drifting" in seen


def test_training_loss_overfits_one_batch():
    torch.manual_seed(0)
    model = TinyFramePack(tiny_config())
    bank = torch.randn(2, 4, 24, 8, 8, generator=torch.Generator().manual_seed(0)).half()
    dc = {"batch": 2, "train_shift": 3.0, "history_noise_prob": 0.0, "history_noise_max": 0.5}
    task = sample_task(random.Random(1), bank.shape[2])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        # the same generator / rng state each time: the same batch, sigma and noise
        loss = training_loss(model, bank, task, dc, torch.Generator().manual_seed(0), random.Random(0), "cpu")
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def _time_bank(n_videos=3, frames=97):
    """A bank whose every latent pixel holds its frame's time index (video v adds 1000 v)."""
    t = torch.arange(frames, dtype=torch.float32)
    bank = t.view(1, 1, frames, 1, 1).repeat(n_videos, 2, 1, 4, 4)
    return bank + 1000 * torch.arange(n_videos, dtype=torch.float32).view(-1, 1, 1, 1, 1)


def test_training_clip_uses_rope_positions_as_real_times_for_true_time_orders():
    from framepack_lab.plan import make_plan
    from framepack_lab.train import step_times, training_clip

    bank, idx = _time_bank(), torch.tensor([2, 0])
    plan = make_plan("inverted_anti_drifting", 64, None)
    step = plan.steps[0]  # the last section, anchored to frame 0 across a capped gap
    times = step_times(step)
    assert times[0] == 0 and min(times[f] for f in step.generated) < min(step.generated)
    clip = training_clip(bank, idx, "inverted_anti_drifting", plan, step,
                         {"true_time_orders": ["inverted_anti_drifting"]}, random.Random(0))
    assert clip.shape == (2, 2, plan.total_frames, 4, 4)
    start = float(clip[1, 0, 0, 0, 0])  # the anchor's real time in video 0
    for f, p in times.items():  # every used frame is the real frame at its position
        assert float(clip[1, 0, f, 0, 0]) == start + p
        assert float(clip[0, 0, f, 0, 0]) == 2000 + start + p
    unused = sorted(set(range(plan.total_frames)) - set(times))
    assert unused and float(clip[:, :, unused].abs().sum()) == 0


def test_training_clip_default_is_a_contiguous_clip():
    from framepack_lab.plan import make_plan
    from framepack_lab.train import training_clip

    bank = _time_bank()
    plan = make_plan("inverted_anti_drifting", 40, None)
    clip = training_clip(bank, torch.tensor([1]), "inverted_anti_drifting", plan, plan.steps[0], {},
                         random.Random(0))
    t = clip[0, 0, :, 0, 0] - 1000
    assert torch.equal(t, t[0] + torch.arange(plan.total_frames, dtype=torch.float32))


# ------------------------------------------------------------------------- pinned numerics
# The first six DiT steps of tiny_train_config(): (order, schedule, n_frames, step index) and loss,
# recorded with the train.py that trained the shipped checkpoint (bit-identical on the recording
# machine; the tolerance only absorbs other CPUs' float rounding). Refactors of train.py, or of
# what it draws through (plan, packing, sampler, world), must not change them: a run in progress
# must stay reproducible by `python -m framepack_lab.train --resume`.
PINNED_TASKS = [
    ('f1', 'f1k1_x_f16k4f4k2f2k1_g4', 31, 0),
    ('f1', 'f1k1_x_f16k4f4k2f2k1_g4', 35, 3),
    ('f1', 'f1k1_x_f16k4f4k2f2k1_g4', 21, 4),
    ('inverted_anti_drifting', 'f1k1_x_g4_f1k1f2k2f16k4_td', 26, 0),
    ('vanilla', 'td_f1k1h16w16f1k1h8w16f1k1h8w8f1k1h4w8f1k1h4w4f1k1h2w4f1k1_g6', 22, 2),
    ('vanilla', 'td_f16k4f4k2f1k1_g4', 30, 0),
]
PINNED_LOSSES = [1.3864729404449463, 1.6347148418426514, 5.061779499053955, 4.552035331726074, 1.1302521228790283, 6.075107574462891]


def test_training_numerics_are_pinned(tmp_path, monkeypatch):
    import framepack_lab.train as T

    seen = []
    original = T.training_loss

    def recording(model, bank, task, *args):
        loss = original(model, bank, task, *args)
        seen.append(((task.order, task.schedule.name, task.plan.n_frames, task.step.index), loss.item()))
        return loss

    monkeypatch.setattr(T, "training_loss", recording)
    train(tiny_train_config(), tmp_path, steps=6, progress=False)
    assert [t for t, _ in seen] == PINNED_TASKS
    np.testing.assert_allclose([loss for _, loss in seen], PINNED_LOSSES, rtol=1e-5, atol=0)


def test_sample_task_is_a_named_task_that_still_unpacks():
    from framepack_lab.train import TrainTask

    task = sample_task(random.Random(3), 40)
    assert isinstance(task, TrainTask)
    order, sched, plan, step = task
    assert (order, sched, plan, step) == (task.order, task.schedule, task.plan, task.step)
    assert task[0] == order and step in plan.steps


def test_one_learning_rate_schedule_for_both_stages():
    from framepack_lab.train import warmup_cosine

    assert warmup_cosine(0, 1.0, 10, 100) == pytest.approx(0.1 * 1.0)  # first warm-up step
    assert warmup_cosine(9, 1.0, 10, 100) == pytest.approx(1.0 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.09))))
    assert warmup_cosine(100, 2.0, 10, 100) == pytest.approx(0.2)  # decays to 10% ...
    assert warmup_cosine(500, 2.0, 10, 100) == pytest.approx(0.2)  # ... and stays there


def test_frame_size_comes_from_the_config():
    from framepack_lab.models.autoencoder import TinyAutoencoder
    from framepack_lab.train import _world_frames, held_out_psnr

    assert _world_frames(np.random.default_rng(0), 2, 32).shape == (2, 3, 32, 32)
    assert _world_frames(np.random.default_rng(0), 1).shape == (1, 3, 64, 64)
    ae = TinyAutoencoder(4, width=8).eval()
    assert np.isfinite(held_out_psnr(ae, "cpu", n_videos=1, n_frames=1, frame_size=32))


def test_train_refuses_a_device_this_machine_lacks(tmp_path):
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        train(tiny_train_config(), tmp_path, device="gpu0", progress=False)
    assert not (tmp_path / "log.jsonl").exists()  # refused before any work


# ------------------------------------------------------------------- presets, Trainer, hooks
def test_presets_are_the_shipped_config_with_documented_overrides():
    from framepack_lab.train import load_preset, merge_config, preset_info, preset_names

    base = load_config(DEFAULT_CONFIG)
    assert preset_names() == ["cpu_hour", "gpu_minutes", "smoke"]
    assert load_preset("gpu_minutes") == base  # the committed config, for a GPU
    cpu = load_preset("cpu_hour")
    assert cpu["model"] == base["model"] and cpu["dit"]["batch"] == base["dit"]["batch"]
    assert (cpu["dit"]["steps"], cpu["data"]["videos"], cpu["ae"]["steps"]) == (2800, 300, 400)
    assert [p["from_step"] for p in cpu["dit"]["phases"]] == [1200, 1500, 2200]
    for name in preset_names():
        info = preset_info(name)
        assert {"description", "device", "measured", "overrides"} <= set(info)
        cfg = load_preset(name)
        assert merge_config(base, info["overrides"]) == cfg
        assert all(p["from_step"] < cfg["dit"]["steps"] for p in cfg["dit"]["phases"]), name
    with pytest.raises(ValueError, match="unknown training preset 'fast'; choose one of cpu_hour, gpu_minutes, smoke"):
        load_preset("fast")


def test_merge_config_merges_dicts_and_replaces_lists():
    from framepack_lab.train import merge_config

    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    assert merge_config(base, {"a": {"y": [3]}, "c": 4}) == {"a": {"x": 1, "y": [3]}, "b": 2, "c": 4}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2}  # unchanged


def test_cli_refuses_a_config_and_a_preset_together(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--config", str(DEFAULT_CONFIG), "--preset", "smoke", "--out", str(tmp_path)])
    assert "give --config or --preset, not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--preset", "laptop", "--out", str(tmp_path)])
    assert "unknown training preset 'laptop'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_stop_callback_and_hooks(tmp_path):
    from framepack_lab.train import load_preset

    seen, checkpoints = [], []
    train(load_preset("smoke"), tmp_path, progress=False, stop=lambda: len(seen) >= 2,
          on_step=seen.append, on_checkpoint=checkpoints.append)
    assert [d["step"] for d in seen] == [1, 2] and checkpoints == [2]
    assert {"step", "loss", "loss_ema", "lr", "order", "schedule", "seconds"} == set(seen[0])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["step"] == 2 and len(state["rng"]["python"][1]) == 625  # Mersenne Twister state


def test_trainer_steps_one_at_a_time_and_refuses_past_the_end(tmp_path):
    from framepack_lab.train import Trainer, load_preset

    t = Trainer(load_preset("smoke"), tmp_path, steps=2, progress=False)
    assert not t.ready and not (tmp_path / "log.jsonl").exists()
    assert t.step()["step"] == 1 and t.ready
    t.step()
    assert t.done
    with pytest.raises(ValueError, match="already reached its 2 DiT steps"):
        t.step()
    with pytest.raises(ValueError, match="steps must be a whole number >= 0"):
        Trainer(load_preset("smoke"), tmp_path, steps=-1)
    t.close()


def test_a_checkpoint_without_rng_states_still_resumes(tmp_path):
    """Checkpoints written before the RNG states were saved reseed from seed + step, as they did."""
    from framepack_lab.train import load_preset

    cfg = load_preset("smoke")
    train(cfg, tmp_path, steps=2, progress=False)
    state = json.loads((tmp_path / "state.json").read_text())
    del state["rng"]
    (tmp_path / "state.json").write_text(json.dumps(state))
    train(cfg, tmp_path, steps=3, resume=True, progress=False)
    assert json.loads((tmp_path / "state.json").read_text())["step"] == 3


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["dit"].update(motion_wieght=3.0), r"unknown key\(s\) \['motion_wieght'\] in \"dit\""),
    (lambda c: c.update(steps=10), r"unknown key\(s\) \['steps'\] in the top level"),
    (lambda c: c["model"].update(widht=64), r"unknown key\(s\) \['widht'\] in \"model\""),
    (lambda c: c["dit"]["phases"].insert(0, {"from_step": 5, "lr": 0.1}), r"unknown key\(s\) \['lr'\] in \"dit\".\"phases\"\[0\]"),
    (lambda c: c["dit"]["phases"].append({"motion_weight": 1.0}), "needs a whole-number from_step"),
    (lambda c: c["dit"].update(motion_weight_orders=["inverted"]), r"motion_weight_orders names \['inverted'\]"),
    (lambda c: c["dit"]["phases"].append({"from_step": 5, "true_time_orders": "f1"}),
     r'true_time_orders is a list of sampling orders, got \'f1\'; write \["f1"\]'),
    (lambda c: c["dit"].update(inverted_gap="capped"), "inverted_gap: gap must be one of"),
    (lambda c: c["dit"]["phases"].append({"from_step": 5, "inverted_gap": -1}), "inverted_gap: gap must be one of"),
    (lambda c: c["data"].update(trail="yes"), r'"data"."trail" is true or false'),
])
def test_a_config_key_the_trainer_would_not_read_is_refused_before_any_work(tmp_path, edit, match):
    cfg = tiny_train_config()
    edit(cfg)
    with pytest.raises(ValueError, match=match):
        train(cfg, tmp_path / "out", steps=1, progress=False)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_the_shipped_config_and_presets_pass_the_key_check():
    from framepack_lab.train import check_config, load_preset, preset_names

    check_config(load_config(DEFAULT_CONFIG))
    for name in preset_names():
        check_config(load_preset(name))


def test_a_config_with_trail_trains_every_stage_on_worlds_with_motion_trails(tmp_path, monkeypatch):
    from framepack_lab import world
    from framepack_lab.train import Trainer

    made = []
    make_world = world.make_world

    def spy(seed, size=world.SIZE, occluded=False, trail=None):
        made.append(trail)
        return make_world(seed, size, occluded, trail)

    monkeypatch.setattr(world, "make_world", spy)
    cfg = tiny_train_config()
    cfg["data"]["trail"] = True
    trainer = Trainer(cfg, tmp_path, steps=1, progress=False)
    try:
        trainer.run()
        assert len(made) > 20 and all(made)  # autoencoder frames, its held-out PSNR, both banks
        meta = json.loads((tmp_path / "tiny" / "config.json").read_text())
        assert meta["training_record"]["config"]["data"]["trail"] is True
        assert trainer.backend().trail is True  # what the notebook's training panel samples from
    finally:
        trainer.close()  # its log file, as train() closes it
