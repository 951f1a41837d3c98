"""Hidden time: the true frames between the anchor and a section that the RoPE positions leave out
(plan.Step.hidden_time), carried by pack() and, when the model was built for it, read by the
tiny DiT beside the flow time."""

import random

import pytest
import torch

from conftest import randomize_zero_init, tiny_config
from framepack_lab.models.tiny import TinyFramePack
from framepack_lab.packing import pack
from framepack_lab.plan import make_plan
from framepack_lab.schedule import PRESETS


def test_orders_at_true_time_hide_nothing():
    for order in ("vanilla", "anti_drifting"):
        assert all(s.hidden_time == 0 for s in make_plan(order, 64))
    assert all(s.hidden_time == 0 for s in make_plan("inverted_anti_drifting", 64, gap="true"))


def test_inverted_official_gap_hides_the_frames_the_padding_leaves_out():
    plan = make_plan("inverted_anti_drifting", 64)  # S = 4: 16 sections, padding [3, 2 * 13, 1, 0]
    S = plan.schedule.generated
    assert S == 4 and len(plan) == 16
    first = plan.steps[0]  # the video's last section, frames 61..64, drawn at RoPE time 1 + 3 * 4 = 13
    assert first.generated[0] == 61 and first.positions[0] == 13 and first.hidden_time == 48
    assert plan.steps[-1].hidden_time == 0  # padding 0: the first section sits right after the anchor
    capped = make_plan("inverted_anti_drifting", 64, gap=6)
    assert capped.steps[0].hidden_time == 61 - (1 + 6 * 4)


def test_f1_hidden_time_is_the_closed_gap():
    plan = make_plan("f1", 64)
    assert plan.steps[0].hidden_time == 0
    later = plan.steps[-1]
    assert later.hidden_time == later.generated[0] - later.positions[0] > 0


def test_pack_carries_the_steps_hidden_time():
    plan = make_plan("inverted_anti_drifting", 64)
    video = torch.zeros(1, 4, plan.total_frames, 8, 8)
    assert pack(video, plan.steps[0]).hidden_time == 48
    assert pack(video, plan.steps[-1]).hidden_time == 0


def _model(hidden_time_max: int) -> TinyFramePack:
    torch.manual_seed(0)
    return randomize_zero_init(TinyFramePack(tiny_config(hidden_time_max=hidden_time_max)), 0).eval()


def _inputs(plan, step):
    video = torch.randn(1, 4, plan.total_frames, 8, 8, generator=torch.Generator().manual_seed(0))
    x_t = torch.randn(1, 4, len(step.generated), 8, 8, generator=torch.Generator().manual_seed(1))
    return pack(video, step), x_t, torch.tensor([0.5])


@torch.no_grad()
def test_zero_initialised_hidden_embedding_changes_nothing():
    """A fine-tune that adds the embedding starts from the model it extends, exactly."""
    torch.manual_seed(0)
    plain = TinyFramePack(tiny_config())
    torch.manual_seed(0)
    told = TinyFramePack(tiny_config(hidden_time_max=96))
    assert not any(p.any() for p in told.hidden_mlp[-1].parameters())
    randomize_zero_init(plain, 0)
    missing = told.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("hidden_mlp.") for k in missing)
    plan = make_plan("inverted_anti_drifting", 64)
    ctx, x_t, sigma = _inputs(plan, plan.steps[0])
    assert torch.equal(plain.eval()(x_t, sigma, ctx), told.eval()(x_t, sigma, ctx))


@torch.no_grad()
def test_the_model_reads_hidden_time_clipped_at_its_maximum():
    model = _model(32)
    plan = make_plan("inverted_anti_drifting", 64)
    ctx, x_t, sigma = _inputs(plan, plan.steps[0])
    out = {h: model(x_t, sigma, ctx.__class__(**{**ctx.__dict__, "hidden_time": h})) for h in (0, 20, 32, 48)}
    assert not torch.allclose(out[0], out[20])
    assert torch.equal(out[32], out[48])  # beyond what training showed: "as far as the longest"
    assert torch.equal(model(x_t, sigma, ctx), out[48])
    plain = _model(0)  # a checkpoint trained without it ignores the field
    assert torch.equal(plain(x_t, sigma, ctx), plain(x_t, sigma, ctx.__class__(**{**ctx.__dict__, "hidden_time": 0})))


def test_true_time_training_clips_tell_the_model_nothing_is_hidden(monkeypatch):
    """For orders in dit.true_time_orders the clip puts every frame at its RoPE time, so the
    training context says hidden_time 0; otherwise it is the step's."""
    from framepack_lab import train

    model = _model(96)
    plan = make_plan("inverted_anti_drifting", 64, PRESETS["temporal_kernel"].schedule)
    step = plan.steps[0]
    assert step.hidden_time > 0
    seen = []
    real = TinyFramePack.forward

    def spy(self, x_t, sigma, context, *a, **k):
        seen.append(context.hidden_time)
        return real(self, x_t, sigma, context, *a, **k)

    monkeypatch.setattr(TinyFramePack, "forward", spy)
    bank = torch.randn(2, 4, 97, 8, 8).half()
    task = train.TrainTask("inverted_anti_drifting", plan.schedule, plan, step)
    dc = {"batch": 2, "train_shift": 3.0}
    for orders in ([], ["inverted_anti_drifting"]):
        train.training_loss(model, bank, task, {**dc, "true_time_orders": orders}, torch.Generator().manual_seed(1),
                            random.Random(0), "cpu")
    assert seen == [step.hidden_time, 0]


@pytest.mark.parametrize("bad", [-1, 1.5, "far"])
def test_config_refuses_a_bad_hidden_time_max(bad):
    with pytest.raises(ValueError, match="hidden_time_max"):
        tiny_config(hidden_time_max=bad)
