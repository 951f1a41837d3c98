"""Measured section cost, the toy Table 1 and the evaluation entry point."""

import math

import numpy as np
import pandas as pd
import pytest

from framepack_lab import world
from framepack_lab.cost import section_costs, unpacked_schedule
from framepack_lab.evaluate import denoising_error, evaluate, format_report
from framepack_lab.schedule import parse
from framepack_lab import table1
from framepack_lab.generate import generate
from framepack_lab.plan import DEFAULT_SCHEDULES


def test_unpacked_schedule_keeps_every_frame_at_k1():
    s = parse(unpacked_schedule(65))
    assert [b.kernel.name for b in s.blocks] == ["k1"] and s.blocks[0].frames == 65


def test_section_costs_packed_flat_unpacked_growing(backend):
    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    costs = section_costs(backend, first, n_sections=8, schedule="td_f4k2f2k1_g4", steps=1)
    pk, up = costs["packed"], costs["unpacked"]
    assert pk.history == up.history == [1, 5, 9, 13, 17, 21, 25, 29]
    assert up.tokens == [64 * (4 + h) for h in up.history]  # every known frame at 64 tokens
    assert pk.tokens[-1] == pk.tokens[-2] == parse("td_f4k2f2k1_g4").token_count(16, 16)
    assert len(pk.seconds) == len(pk.peak_mb) == 8 and min(pk.seconds) > 0
    assert all(m >= 0 for m in pk.peak_mb + up.peak_mb)
    assert math.isclose(up.ratio, up.seconds[-1] / up.seconds[0])


def test_table1_run_gives_one_row_per_order_and_schedule(backend):
    rows = [("vanilla", "td_f16k4f4k2f2k1_g4"), ("inverted_anti_drifting", "f1k1_x_g4_f2k1f4k2f16k4_td")]
    raw, summary = table1.run(backend, rows, seeds=2, frames=9, steps=1, progress=False)
    assert len(raw) == 4 and len(summary) == 2
    assert list(summary["order"]) == ["vanilla", "inverted_anti_drifting"]
    for col in ("delta_colour_drift_mean", "delta_colour_drift_std", "dynamic_mean_mean", "seconds_mean"):
        assert col in summary and np.isfinite(summary[col]).all()


def test_table1_command_writes_csv_and_figure(tmp_path):
    table1.main(["--preset", "smoke", "--out", str(tmp_path)])
    summary = pd.read_csv(tmp_path / "table1.csv")
    assert len(summary) == len(table1.PRESETS["smoke"]["rows"])
    assert (tmp_path / "table1_raw.csv").exists() and (tmp_path / "table1.png").stat().st_size > 1000


def test_evaluate_reports_every_figure(backend):
    res = evaluate(backend, orders=["vanilla", "inverted_anti_drifting"], n_seeds=2, n_frames=17, steps=1,
                   progress=False)
    for r in res.values():
        assert set(r) >= {"survival", "motion", "drift", "seconds"}
        assert r["seconds"] > 0 and r["drift"] >= 0
    text = format_report(res)
    assert "drift ratio vanilla / inverted" in text and "target" in text


def test_denoising_error_depends_on_rope_alignment(backend):
    kw = dict(order="vanilla", n_worlds=2, n_frames=13, noise_levels=(0.5,))
    avg = denoising_error(backend, **kw)
    first = denoising_error(backend, rope_mode="first", **kw)
    again = denoising_error(backend, **kw)
    assert np.isfinite(avg) and avg > 0
    assert avg == again  # seeded
    assert first != avg
    assert backend.rope_mode == "average" and backend.rope_time_offset  # restored


def test_rope_alignment_switches_and_restores_even_on_error(backend):
    with backend.rope_alignment(mode="center", time_offset=False) as b:
        assert b is backend and (backend.rope_mode, backend.rope_time_offset) == ("center", False)
    assert (backend.rope_mode, backend.rope_time_offset) == ("average", True)
    with pytest.raises(RuntimeError, match="inside"):
        with backend.rope_alignment(mode="first"):
            assert backend.rope_mode == "first"
            raise RuntimeError("inside")
    assert (backend.rope_mode, backend.rope_time_offset) == ("average", True)


@pytest.mark.parametrize("kw,match", [({"mode": "corner"}, "unknown RoPE alignment mode 'corner'"),
                                      ({"time_offset": "no"}, "time_offset must be True or False")])
def test_rope_alignment_refuses_unknown_settings_before_changing_anything(backend, kw, match):
    with pytest.raises(ValueError, match=match):
        backend.rope_alignment(**kw)
    assert (backend.rope_mode, backend.rope_time_offset) == ("average", True)


def test_denoising_error_refuses_an_unknown_rope_mode(backend):
    with pytest.raises(ValueError, match="average, center, first"):
        denoising_error(backend, rope_mode="middle", n_worlds=1, n_frames=9, noise_levels=(0.5,))
    assert backend.rope_mode == "average"


def test_sweep_gives_per_row_videos_and_metrics(backend):
    worlds = [world.HELDOUT_SEEDS.start + 3, world.HELDOUT_SEEDS.start + 8]
    rows = [("vanilla", "td_f4k2f2k1_g4"), ("f1", None)]
    runs = table1.sweep(backend, rows, worlds=worlds, seeds=[5, 6], frames=9, steps=1, progress=False)
    assert [(r.order, r.schedule) for r in runs] == [("vanilla", "td_f4k2f2k1_g4"),
                                                      ("f1", DEFAULT_SCHEDULES["f1"])]  # None: the default
    for r in runs:
        assert r.worlds == worlds and r.seeds == [5, 6] and r.plan.order == r.order
        assert len(r.videos) == 2 and r.videos[0].shape == (9, 64, 64, 3)
        for m in r.metrics:
            assert set(m) == {f"delta_{k}" for k in table1.DELTA_METRICS} | {"dynamic_mean", "survival_last",
                                                                               "seconds"}
    # the batch makes the videos separate generate calls make (the world's first frame, the given seed)
    alone = generate(backend, world.video(worlds[1], 1)[0], n_frames=9, order="vanilla",
                     schedule="td_f4k2f2k1_g4", steps=1, seed=6)
    assert np.allclose(runs[0].videos[1], alone.frames, atol=1e-4)
    assert runs[0].metrics[1]["delta_colour_drift"] == pytest.approx(table1.measure(alone.frames)["delta_colour_drift"],
                                                                   abs=1e-4)
    raw = table1.raw_table(runs)
    assert len(raw) == 4 and list(raw["world"]) == worlds * 2 and list(raw["seed"]) == [5, 6] * 2
    summary = table1.summarize(raw)
    assert list(summary["order"]) == ["vanilla", "f1"] and "delta_clarity_std" in summary


def test_sweep_keeps_no_videos_when_asked_and_defaults_seeds_to_worlds(backend):
    (run,) = table1.sweep(backend, [("vanilla", None)], worlds=2, frames=9, steps=1, keep_videos=False,
                          progress=False)
    assert run.videos == [] and run.worlds == run.seeds == list(world.HELDOUT_SEEDS)[:2]


@pytest.mark.parametrize("kw,match", [({"rows": []}, "rows is empty"), ({"worlds": 0}, "at least 1"),
                                      ({"worlds": []}, "worlds is empty"),
                                      ({"seeds": [1, 2, 3]}, "one seed per world")])
def test_sweep_refuses_bad_arguments(backend, kw, match):
    args = {"rows": [("vanilla", None)], "worlds": 2, **kw}
    with pytest.raises(ValueError, match=match):
        table1.sweep(backend, frames=9, steps=1, progress=False, **args)


def test_section_costs_leaves_the_stop_hook_alone(backend, monkeypatch):
    """The meter starts from generate's before_section hook, not from its stop hook."""
    import framepack_lab.cost as cost

    seen = []
    real = cost.generate

    def spy(*args, **kw):
        seen.append((kw.get("stop"), kw.get("before_section") is not None))
        return real(*args, **kw)

    monkeypatch.setattr(cost, "generate", spy)
    section_costs(backend, world.video(world.HELDOUT_SEEDS.start, 1)[0], n_sections=2, schedule="td_f2k1_g4", steps=1)
    measured = [s for s in seen if s[1]]
    assert len(measured) == 2 * 3 and all(stop is None for stop, _ in measured)  # 2 schedules x 3 repeats


def test_section_costs_refuses_more_sections_than_the_baseline_can_run(backend):
    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    from framepack_lab.cost import max_sections
    from framepack_lab.generate import MAX_STEP_FRAMES

    top = (MAX_STEP_FRAMES - 1) // 4  # the unpacked baseline's last step: 1 + n * 4 frames at L_f
    assert max_sections("td_f4k2f2k1_g4") == top
    for n in (0, top + 1):
        with pytest.raises(ValueError, match=f"n_sections must be a whole number from 1 to {top}"):
            section_costs(backend, first, n_sections=n, schedule="td_f4k2f2k1_g4", steps=1)


# ------------------------------------------------------------ repeats, the fit and its wording
def test_section_costs_takes_the_median_of_interleaved_repeats(backend, monkeypatch):
    import framepack_lab.cost as cost

    calls = []
    real = cost.generate

    def spy(*args, **kw):
        calls.append((kw["plan"].schedule.name, kw["steps"]))
        return real(*args, **kw)

    monkeypatch.setattr(cost, "generate", spy)
    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    costs = section_costs(backend, first, n_sections=3, schedule="td_f2k1_g4", steps=2, repeats=3)
    up = unpacked_schedule(13)
    # a whole-video warm-up of each (1 step), then packed and unpacked alternating
    assert calls == [("td_f2k1_g4", 1), (up, 1)] + [("td_f2k1_g4", 2), (up, 2)] * 3
    for c in costs.values():
        assert np.asarray(c.runs).shape == (3, 3)
        assert c.seconds == pytest.approx(np.median(c.runs, axis=0).tolist())
        lo, hi = c.spread
        assert lo == pytest.approx(np.min(c.runs, axis=0).tolist()) and hi == pytest.approx(np.max(c.runs, axis=0).tolist())


@pytest.mark.parametrize("kw,match", [({"repeats": 0}, "repeats must be a whole number of at least 1"),
                                      ({"steps": 0}, "steps must be a whole number"),
                                      ({"n_sections": 2.0}, "n_sections must be a whole number")])
def test_section_costs_refuses_bad_counts(backend, kw, match):
    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    with pytest.raises(ValueError, match=match):
        section_costs(backend, first, **{"n_sections": 2, "schedule": "td_f2k1_g4", **kw})


def _cost(label, tokens, seconds):
    from framepack_lab.cost import SectionCost

    return SectionCost(label, [1 + 4 * i for i in range(len(tokens))], tokens, seconds, [0.0] * len(tokens))


def test_fit_cost_recovers_linear_and_quadratic_terms():
    from framepack_lab.cost import fit_cost

    a, b, c = 0.01, 2e-5, 3e-9
    tokens = [400, 800, 1600, 3200]
    t = [a + b * n + c * n * n for n in tokens]
    fit = fit_cost({"packed": _cost("packed", [400, 400], t[:1] * 2), "unpacked": _cost("unpacked", tokens, t)})
    assert (fit.a, fit.b, fit.c) == pytest.approx((a, b, c), rel=1e-6)
    assert fit(1000) == pytest.approx(a + b * 1000 + c * 1e6)
    assert fit.per_1k(1000) == pytest.approx(1000 * (b + 2 * c * 1000))


def test_fit_cost_falls_back_to_a_line_when_the_curve_bends_down():
    from framepack_lab.cost import fit_cost

    tokens = [100, 200, 300, 400]
    fit = fit_cost({"unpacked": _cost("unpacked", tokens, [1.0, 1.8, 2.4, 2.8])})
    assert fit.c == 0.0
    slope, icpt = np.polyfit(tokens, [1.0, 1.8, 2.4, 2.8], 1)
    assert (fit.a, fit.b) == pytest.approx((icpt, slope))
    with pytest.raises(ValueError, match="at least 3 different token counts"):
        fit_cost({"packed": _cost("packed", [400, 400], [0.1, 0.1])})


def test_describe_costs_words_what_the_numbers_say():
    from framepack_lab.cost import describe_costs

    flat = {"packed": _cost("packed", [400, 500, 500], [0.10, 0.11, 0.11]),
            "unpacked": _cost("unpacked", [400, 800, 1200], [0.10, 0.20, 0.30])}
    text = describe_costs(flat)
    assert "packed: 100 ms for the first section (400 tokens), 110 ms for the last (500 tokens), so it stayed flat (1.10x, tokens 1.25x)" in text
    assert "so it grew (3.00x, tokens 3.00x)" in text
    assert "unpacked section took 2.7x the packed one" in text and "packing pays off" in text
    assert "stopped growing" not in text  # a 2-section plateau is too short to call
    plateau = {"packed": _cost("packed", [400, 500, 500, 500], [0.05, 0.10, 0.12, 0.11]),
               "unpacked": _cost("unpacked", [400, 800, 1200, 1600], [0.10, 0.20, 0.30, 0.40])}
    assert ("from 5 known frames on its tokens stopped growing and its time stayed between 100 and 120 ms"
            in describe_costs(plateau))
    same = {"packed": _cost("packed", [400, 500, 500], [0.30, 0.20, 0.10]),
            "unpacked": _cost("unpacked", [400, 800, 1200], [0.10, 0.10, 0.10])}
    text = describe_costs(same)
    assert "so it fell (0.33x, tokens 1.25x)" in text and "does not yet save time" in text


def test_summarize_counts_worlds_per_row():
    raw = pd.DataFrame({"order": ["a", "a", "b"], "schedule": ["s", "s", "t"], "world": [1, 2, 1],
                        "delta_x": [1.0, 3.0, 2.0], "dynamic_mean": [0.0] * 3, "survival_last": [1.0] * 3,
                        "seconds": [1.0] * 3})
    s = table1.summarize(raw)
    assert list(s["n"]) == [2, 1] and list(s["delta_x_mean"]) == [2.0, 2.0]


def _paired(ref, other):
    n = len(ref)
    return pd.DataFrame({"schedule": ["td"] * n + ["ta"] * n, "world": list(range(n)) * 2,
                         "delta_colour_drift": list(ref) + list(other)})


def test_paired_difference_interval_and_verdicts():
    ref = [1.0, 2.0, 3.0, 4.0]
    d = table1.paired_difference(_paired(ref, [r + x for r, x in zip(ref, [0.01, -0.01, 0.02, 0.0])]),
                                 "delta_colour_drift", "td", "ta")
    diffs = np.array([0.01, -0.01, 0.02, 0.0])
    half = 3.182 * diffs.std(ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert d["mean"] == pytest.approx(0.005) and d["n"] == 4
    assert (d["lo"], d["hi"]) == pytest.approx((0.005 - half, 0.005 + half))
    assert d["reference_mean"] == 2.5 and d["relative"] == pytest.approx(0.002)
    assert d["verdict"] == "negligible"  # the interval is within +-0.25 (10% of 2.5)
    up = table1.paired_difference(_paired(ref, [r + 1 + x for r, x in zip(ref, [0.01, -0.01, 0.02, 0.0])]),
                                  "delta_colour_drift", "td", "ta")
    assert up["verdict"] == "higher"
    down = table1.paired_difference(_paired(ref, [r - 1 for r in ref]), "delta_colour_drift", "td", "ta")
    assert down["verdict"] == "lower" and down["lo"] == down["hi"] == -1.0
    wide = table1.paired_difference(_paired(ref, [r + x for r, x in zip(ref, [1.0, -1.0, 1.0, -1.0])]),
                                    "delta_colour_drift", "td", "ta")
    assert wide["verdict"] == "inconclusive"


@pytest.mark.parametrize("args,match", [(("delta_colour_drift", "td", "tc"), "other='tc' is not a value"),
                                        (("delta_clarity", "td", "ta"), "metric 'delta_clarity' is not a column")])
def test_paired_difference_refuses_what_it_cannot_compare(args, match):
    with pytest.raises(ValueError, match=match):
        table1.paired_difference(_paired([1.0, 2.0], [1.0, 2.0]), *args)
    with pytest.raises(ValueError, match="share 1 world"):
        table1.paired_difference(_paired([1.0], [1.0]), "delta_colour_drift", "td", "ta")


def test_truth_row_scores_the_worlds_own_videos():
    from framepack_lab.evaluate import truth_figures

    t = truth_figures(n_seeds=4, n_frames=33)
    assert t["presence"] > 0.95 and 0.9 < t["motion"] < 1.1  # the world against itself
    assert 0.9 < t["reach"] < 1.15  # centroids of partly hidden sprites shift a little
    assert 0 < t["size_kept"] <= 1
    text = format_report({"vanilla": {**t, "seconds": 1.0}}, truth=t)
    assert "(the worlds own videos)" in text


def test_first_world_measures_a_disjoint_sample_of_worlds(backend):
    from framepack_lab.evaluate import heldout_seeds, run_order, score_videos, truth_figures

    res = evaluate(backend, orders=["f1"], n_seeds=2, n_frames=9, steps=1, progress=False, first_world=16)
    seeds = heldout_seeds(2, 16)
    assert seeds == list(world.HELDOUT_SEEDS)[16:18]
    videos, _ = run_order(backend, "f1", seeds, 9, 1)
    assert res["f1"]["drift"] == score_videos(videos, seeds)["drift"]
    t0, t16 = truth_figures(2, 9), truth_figures(2, 9, first_world=16)
    assert t16["drift"] == score_videos([world.video(s, 9) for s in seeds], seeds)["drift"] != t0["drift"]


def test_a_first_world_outside_the_held_out_range_is_refused(capsys):
    from framepack_lab.evaluate import main

    with pytest.raises(SystemExit):
        main(["--first-world", str(len(world.HELDOUT_SEEDS)), "--seeds", "16"])
    assert "--first-world: the first held-out world must be 0.." in capsys.readouterr().err
    with pytest.raises(ValueError, match="so that 2 held-out worlds follow it"):
        evaluate(None, orders=["f1"], n_seeds=2, first_world=-1)  # refused before the model is used


def test_a_video_that_stands_still_has_no_reach_and_no_motion():
    """Reach: how far sprites get from the start by the last frame, against the world's."""
    from framepack_lab.evaluate import heldout_seeds, score_videos

    seeds = heldout_seeds(3)
    still = [np.repeat(world.video(s, 1), 9, axis=0) for s in seeds]
    r = score_videos(still, seeds)
    assert r["reach"] == 0.0 and r["motion"] == 0.0 and r["presence"] == 1.0
    assert "reach" in format_report({"vanilla": {**r, "seconds": 1.0}}).splitlines()[0]


def test_the_inverted_gap_changes_only_the_inverted_order(backend):
    """--inverted-gap runs the inverted order at another RoPE gap (a different video); the other
    orders have no gap and give the same videos; the official gap is the default."""
    from framepack_lab.evaluate import heldout_seeds, inverted_gap_sweep, run_order

    seeds = heldout_seeds(2)
    official, _ = run_order(backend, "inverted_anti_drifting", seeds, 21, 1)
    default, _ = run_order(backend, "inverted_anti_drifting", seeds, 21, 1, inverted_gap="official")
    true, _ = run_order(backend, "inverted_anti_drifting", seeds, 21, 1, inverted_gap="true")
    assert all(np.array_equal(a, b) for a, b in zip(official, default))
    assert not all(np.array_equal(a, b) for a, b in zip(official, true))
    f1_a, _ = run_order(backend, "f1", seeds, 9, 1)
    f1_b, _ = run_order(backend, "f1", seeds, 9, 1, inverted_gap="true")
    assert all(np.array_equal(a, b) for a, b in zip(f1_a, f1_b))
    sweep = inverted_gap_sweep(backend, gaps=("official", "true"), n_seeds=2, n_frames=21, steps=1, progress=False)
    assert set(sweep) == {"official", "true"}  # a random-weight model draws no sprites: only the keys are checked
    assert all(set(r) >= {"presence", "motion", "reach", "invented"} for r in sweep.values())


def test_a_bad_inverted_gap_is_refused_before_any_work(capsys):
    from framepack_lab.evaluate import inverted_gap_sweep, main

    with pytest.raises(SystemExit):
        main(["--inverted-gap", "capped"])
    assert "--inverted-gap: gap must be one of" in capsys.readouterr().err
    with pytest.raises(ValueError, match="gap must be one of"):
        evaluate(None, orders=["f1"], n_seeds=2, inverted_gap=-1)  # refused before the model is used
    with pytest.raises(ValueError, match="gap must be one of"):
        inverted_gap_sweep(None, gaps=("official", 2.5))


def test_evaluate_shows_a_checkpoint_trained_with_trails_worlds_with_trails(tmp_path, capsys, monkeypatch):
    """The checkpoint's training config says which worlds it knows; `evaluate` draws those."""
    import json
    import shutil

    from framepack_lab.evaluate import main
    from framepack_lab.models.tiny import ASSETS, load_tiny

    assert load_tiny(device="cpu").trail is False  # the shipped checkpoint was trained without trails
    ckpt = tmp_path / "trail"
    shutil.copytree(ASSETS / "tiny", ckpt)
    meta = json.loads((ckpt / "config.json").read_text())
    meta["training_record"]["config"]["data"]["trail"] = True
    (ckpt / "config.json").write_text(json.dumps(meta))
    assert load_tiny(ckpt, device="cpu").trail is True
    drawn = []
    render = world.render
    monkeypatch.setattr(world, "render", lambda w, times: drawn.append(w.trail) or render(w, times))
    main(["--checkpoint", str(ckpt), "--seeds", "1", "--frames", "9", "--steps", "1", "--orders", "f1"])
    assert "worlds drawn with motion trails" in capsys.readouterr().out
    assert drawn and all(drawn)  # the prompt frame and the truth row alike
    assert world.DEFAULT_TRAIL is False  # restored afterwards


def test_default_trail_sets_what_make_world_draws_and_restores_it():
    before = world.DEFAULT_TRAIL
    with world.default_trail(not before):
        assert world.make_world(world.HELDOUT_SEEDS[0]).trail is (not before)
        assert world.make_world(world.HELDOUT_SEEDS[0], trail=before).trail is before  # explicit wins
    assert world.DEFAULT_TRAIL is before
    with pytest.raises(RuntimeError):
        with world.default_trail(True):
            raise RuntimeError
    assert world.DEFAULT_TRAIL is before
    assert world.config_trail({"data": {"trail": True}}) and not world.config_trail({"data": {}})
