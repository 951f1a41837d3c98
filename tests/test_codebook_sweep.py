"""The +D trade-off sweep: drift, presence, motion and probe recall against the codebook size K."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from framepack_lab import codebook_sweep as cs
from framepack_lab import forgetting, table2

from conftest import random_backend


def _backend(ks=(1, 4)):
    b = random_backend(history_noise=True)
    g = np.random.default_rng(0)
    b.codebooks = {k: torch.from_numpy(g.normal(size=(k, b.latent_channels)).astype(np.float32)) for k in ks}
    return b


SMALL = dict(n_seeds=1, n_frames=9, steps=1, hidden_frames=0, probe_worlds=1, progress=False)


def test_sweep_rows_and_constants():
    rows = cs.sweep_rows([1, 64])
    assert [r.name for r in rows] == ["+D1", "+D64", cs.NO_D]
    assert [r.schedule for r in rows] == [table2.VANILLA + "+D1", table2.VANILLA + "+D64", table2.VANILLA]
    assert all(r.order == "vanilla" and r.options == {"history_noise": 0.0} for r in rows)
    assert cs.PROBE_SCHEDULE == "td_f16k4f4k2f2k1_g4"  # the probe's deep packed history


def test_sweep_ks_checks_before_any_work():
    b = _backend((1, 4, 16))
    assert cs.sweep_ks(b) == [1, 4, 16] and cs.sweep_ks(b, [16, 1]) == [1, 16]
    with pytest.raises(ValueError, match=r"no codebook with K=64 in this checkpoint; it has K in \[1, 4, 16\]"):
        cs.sweep(b, ks=[64], **SMALL)
    with pytest.raises(ValueError, match="has no discrete-history codebook"):
        cs.sweep(random_backend(), **SMALL)
    with pytest.raises(ValueError, match="at least one codebook size"):
        cs.sweep_ks(b, [])
    with pytest.raises(ValueError, match="n_seeds must be a whole number"):
        cs.sweep(b, **{**SMALL, "n_seeds": 0})
    with pytest.raises(ValueError, match="can hide for at most"):
        cs.sweep(b, **{**SMALL, "hidden_frames": 99})


def test_sweep_measures_every_k_and_the_reference():
    b = _backend((1, 4))
    table, videos, probes = cs.sweep(b, **SMALL)
    assert list(table["label"]) == ["+D1", "+D4", cs.NO_D]
    assert table["K"].iloc[:2].tolist() == [1, 4] and math.isnan(table["K"].iloc[2])
    for col in ("drift_mean", "presence_mean", "motion_mean", "recall", "recall_lo95", "recall_hi95"):
        assert col in table
    assert table["recall"].between(0, 1).all()
    assert set(videos) == set(probes) == {"+D1", "+D4", cs.NO_D}
    assert videos["+D1"][0].shape == (9, 64, 64, 3)
    # the codebook is really used: each K gives another video than no +D and than the other K
    assert not np.allclose(videos["+D1"][0], videos[cs.NO_D][0])
    assert not np.allclose(videos["+D1"][0], videos["+D4"][0])
    assert probes["+D1"].schedule.endswith("+D1") and not probes[cs.NO_D].schedule.endswith("+D1")
    # the probe video figure (forgetting.plot_probe): truth over generated, the takeover marked
    probe = probes["+D1"]
    fig = forgetting.plot_probe(probe, 0, every=4)
    ax = fig.axes[0]
    frames = [int(t.get_text()) for t in ax.get_xticklabels()]
    assert frames[0] == max(probe.takeover - probe.hidden_frames - forgetting.LEAD - 8, 0)
    assert frames[-1] < probe.check[1] and frames[1] - frames[0] == 4
    red = [ln for ln in ax.get_lines() if ln.get_color() == "#d62728"]
    first_gen = next(i for i, f in enumerate(frames) if f >= probe.takeover)
    assert len(red) == 1 and red[0].get_xdata()[0] == 64 * first_gen - 0.5
    assert ("not recalled" in ax.get_title()) == (probe.recall_per_world[0] == 0)
    with pytest.raises(ValueError, match="world_index must be 0..0"):
        forgetting.plot_probe(probe, 1)
    # the no +D line is Table 2's vanilla row on the same worlds
    _, ref, _ = table2.run(b, [cs.sweep_rows([])[0]], 1, 9, 1, progress=False)
    assert math.isclose(table["drift_mean"].iloc[2], ref["drift_mean"].iloc[0])


def test_plot_and_findings_read_the_numbers():
    table = pd.DataFrame({"label": ["+D1", "+D16", "+D1024", cs.NO_D], "K": [1, 16, 1024, float("nan")],
                          "drift_mean": [0.01, 0.2, 0.31, 0.30], "drift_ci95": [0.01, 0.05, 0.02, 0.02],
                          "presence_mean": [0.1, 0.8, 1.0, 1.0], "presence_ci95": [0.0] * 4,
                          "motion_mean": [0.0, 0.5, 0.7, 0.7], "motion_ci95": [0.0] * 4,
                          "recall": [0.0, 0.25, 0.5, 0.5], "recall_lo95": [0.0, 0.1, 0.2, 0.2],
                          "recall_hi95": [0.3, 0.5, 0.8, 0.8]})
    fig = cs.plot_sweep(table, ("drift", "recall", "presence"))
    axes = fig.axes
    assert len(axes) == 3 and all(ax.get_xscale() == "log" for ax in axes)
    ref = [ln for ln in axes[0].get_lines() if ln.get_label() == cs.NO_D]
    assert len(ref) == 1 and ref[0].get_ydata()[0] == 0.30  # the dashed reference
    text = cs.findings(table)
    assert text[0] == "drift: K=1 0.010, K=1024 0.310, no +D 0.300"
    assert text[2].startswith("K=1 drifts less than no +D and recalls less (as the paper says)")
    assert text[2].endswith("; the recall intervals overlap, so there are too few worlds to be sure")
    table.loc[3, "recall_lo95"] = 0.35  # no +D's interval now clears K=1's (0.0-0.3)
    assert "overlap" not in cs.findings(table)[2]
    assert text[4].startswith("sprites present over all frames: K=1 0.10, K=1024 1.00, no +D 1.00")
    assert "K=1024 is within" in text[3] and "a no-op, as the paper says" in text[3]
    table.loc[0, "drift_ci95"] = 0.3  # K=1's drift interval now reaches no +D's
    assert cs.findings(table)[2].endswith("; the drift intervals overlap, so there are too few worlds to be sure")
    table.loc[2, "drift_mean"] = 0.9
    assert "not yet a no-op" in cs.findings(table)[3]
    with pytest.raises(ValueError, match="plot_sweep draws"):
        cs.plot_sweep(table, ("clarity",))
