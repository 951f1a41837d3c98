"""Occluder worlds, the forgetting probe and the toy Table 2."""

import math

import numpy as np
import pandas as pd
import pytest

from framepack_lab import forgetting, table2, world

from conftest import random_backend


def test_occluded_world_keeps_the_rest_of_the_world():
    plain, occ = world.make_world(123), world.make_world(123, occluded=True)
    assert plain.occluder is None and occ.occluder is not None
    assert plain.sprites == occ.sprites and plain.waves == occ.waves
    o = occ.occluder
    assert world.OCCLUDER_WIDTH[0] <= o.x_hi - o.x_lo <= world.OCCLUDER_WIDTH[1]
    frame = world.render(occ, [0])[0]
    mid = int((o.x_lo + o.x_hi) / 2)
    assert np.allclose(frame[:, mid], np.asarray(o.colour), atol=1e-6)  # the band is in front of everything


@pytest.mark.parametrize("hidden", [0, 8, 24])
def test_probe_world_hides_the_sprite_for_the_asked_frames(hidden):
    w, t_in, t_out = world.probe_world(world.HELDOUT_SEEDS[5], hidden)
    mask = world.hidden_mask(w, np.arange(t_out + 40))[:, 0]
    hidden_frames = np.nonzero(mask)[0]
    assert hidden_frames[0] == t_in and hidden_frames[-1] == t_out and mask.sum() == hidden + 1
    frames = world.render(w, [0, t_in, t_out + 33])
    colour = w.sprites[0].colour
    assert colour in world.find_sprites(frames[0])       # fully visible at the start
    assert world.find_sprites(frames[1]) == {}           # gone behind the band
    assert colour in world.find_sprites(frames[2])       # back on the other side


def test_probe_world_refuses_gaps_that_do_not_fit():
    with pytest.raises(ValueError, match="can hide for at most 32 frames"):
        world.probe_world(world.HELDOUT_SEEDS[0], 40)
    with pytest.raises(ValueError, match="integer >= 0"):
        world.probe_world(world.HELDOUT_SEEDS[0], -1)


def test_score_probe_on_the_truth_and_on_an_empty_video():
    w, truth, takeover, check = forgetting.probe_setup(world.HELDOUT_SEEDS[300], 8)
    assert 1 <= takeover < check[0] and check[1] == len(truth)
    assert forgetting.score_probe(truth, w, check) == {"recall": 1.0, "same_size": 1.0, "right_place": 1.0,
                                                       "impostors": 0.0}
    empty = np.broadcast_to(np.asarray(w.base, np.float32), truth.shape)
    assert forgetting.score_probe(empty, w, check)["recall"] == 0.0


def test_recall_interval_is_the_wilson_interval():
    lo, hi = forgetting.recall_interval([1] * 8 + [0] * 8)
    assert math.isclose(lo, 0.2800, abs_tol=1e-4) and math.isclose(hi, 0.7200, abs_tol=1e-4)
    assert forgetting.recall_interval([1, 1, 1, 1])[1] == 1.0


def test_forgetting_probe_runs_and_keeps_the_prefix(tmp_path):
    b = random_backend()
    b_size = 64  # probe worlds are 64 x 64
    runs = forgetting.forgetting_curve(b, ["td_f2k1_g4"], (0,), n_worlds=2, steps=1, progress=False,
                                       history_noise=0.0)
    (r,) = runs
    assert len(r.videos) == 2 and r.videos[0].shape[1:] == (b_size, b_size, 3)
    assert 0.0 <= r.recall <= 1.0 and len(r.recall_per_world) == 2
    path = forgetting.write_csv(runs, tmp_path / "f.csv")
    assert pd.read_csv(path)["worlds"].tolist() == [2]
    forgetting.plot_curve(runs)


def test_t_quantile_and_summary():
    assert table2.t_quantile(16) == 2.131 and table2.t_quantile(100) == 1.96
    s = table2.summarise([1.0, 2.0, 3.0, float("nan")])
    assert s["n"] == 3 and s["mean"] == 2.0 and math.isclose(s["ci95"], 4.303 * 1.0 / math.sqrt(3))


def test_agreement_reads_the_ranking_from_the_numbers():
    summary = pd.DataFrame({"row": ["inverted anti-drifting", "vanilla + D", "vanilla", "repeating image-to-video"],
                            "drift_mean": [0.01, 0.02, 0.05, 0.30]})
    text = table2.agreement(summary)
    assert "are our top 2" in text and "repeating image-to-video is last" in text
    summary["drift_mean"] = [0.05, 0.02, 0.01, 0.30]
    assert "are not our top 2 (ours: vanilla, vanilla + D)" in table2.agreement(summary)


def test_table2_smoke_with_every_row_realised():
    b = random_backend(history_noise=True)
    g = np.random.default_rng(0)
    import torch
    b.codebooks = {256: torch.from_numpy(g.normal(size=(256, b.latent_channels)).astype(np.float32))}
    raw, summary, videos = table2.run(b, table2.ROWS, n_seeds=2, n_frames=9, steps=1, progress=False, keep_videos=True)
    assert list(summary["row"]) == [r.name for r in table2.ROWS]
    assert len(raw) == 2 * len(table2.ROWS) and set(videos) == {r.name for r in table2.ROWS}
    table2.plot_table2(summary)
