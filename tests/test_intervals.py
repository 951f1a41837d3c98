"""Bootstrap intervals over worlds (framepack_lab.intervals) and how evaluate reports them."""

import numpy as np
import pytest

from framepack_lab import world
from framepack_lab.evaluate import (INTERVAL_FIGURES, format_report, heldout_seeds, pool_parts, score_videos,
                                    world_parts)
from framepack_lab.intervals import bootstrap


def _mean_pool(parts):
    return {"m": float(np.mean(parts))}


def test_the_interval_is_the_central_share_of_the_resampled_means():
    """Exact numbers: a two-valued sample's bootstrap means are binomial; the 90% interval of the
    mean of 10 draws of {0, 1} lies within the binomial's 5th-95th percentiles."""
    parts = [0.0] * 5 + [1.0] * 5
    lo, hi = bootstrap(parts, _mean_pool, ["m"], draws=4000)["m"]
    assert (lo, hi) == (0.2, 0.8)  # Binomial(10, 0.5)/10: P(<= 0.2) = 0.055, P(>= 0.8) = 0.055


def test_the_same_parts_give_the_same_interval_and_a_constant_gives_a_point():
    parts = [0.1, 0.5, 0.3, 0.9]
    assert bootstrap(parts, _mean_pool, ["m"]) == bootstrap(parts, _mean_pool, ["m"])
    assert bootstrap(parts, _mean_pool, ["m"], seed=1) != bootstrap(parts, _mean_pool, ["m"])
    assert bootstrap([0.4] * 6, _mean_pool, ["m"])["m"] == pytest.approx((0.4, 0.4))


@pytest.mark.parametrize("kw,match", [({"parts": [1.0]}, "at least 2 worlds"), ({"level": 1.0}, "level must be"),
                                      ({"draws": 3}, "draws must be at least 10")])
def test_bad_bootstrap_arguments_are_refused(kw, match):
    args = {"parts": [1.0, 2.0], "pool": _mean_pool, "names": ["m"], **kw}
    with pytest.raises(ValueError, match=match):
        bootstrap(**args)


def test_world_parts_pool_to_the_same_figures_and_intervals_hold_them():
    """score_videos pools world_parts; the intervals of the worlds' own videos hold the pooled figure."""
    seeds = heldout_seeds(6)
    videos = [world.video(s, 17) for s in seeds]
    parts = [world_parts(v, s) for v, s in zip(videos, seeds)]
    pooled, direct = pool_parts(parts), score_videos(videos, seeds)
    for k in INTERVAL_FIGURES:
        assert pooled[k] == direct[k]
    iv = bootstrap(parts, pool_parts, INTERVAL_FIGURES, draws=200)
    for k in ("presence", "motion", "reach", "drift"):
        assert iv[k][0] <= pooled[k] <= iv[k][1], k
    res = {"vanilla": {**pooled, "seconds": 1.0, "intervals": iv}}
    lines = format_report(res).splitlines()
    row = lines.index(next(line for line in lines if line.startswith("vanilla")))
    below = lines[row + 1]
    assert below.startswith(" " * 24) and "-" in below and len(below.split()) == len(INTERVAL_FIGURES)
    assert any("bootstrap interval over worlds" in line for line in lines)


def test_evaluate_gives_each_order_its_intervals_when_asked(backend):
    from framepack_lab.evaluate import evaluate

    res = evaluate(backend, orders=["f1"], n_seeds=3, n_frames=9, steps=1, progress=False)["f1"]
    assert set(res["intervals"]) == set(INTERVAL_FIGURES)
    lo, hi = res["intervals"]["drift"]
    assert lo <= res["drift"] <= hi
    assert "intervals" not in evaluate(backend, orders=["f1"], n_seeds=3, n_frames=9, steps=1, progress=False,
                                       intervals=False)["f1"]
    assert "intervals" not in evaluate(backend, orders=["f1"], n_seeds=1, n_frames=9, steps=1, progress=False)["f1"]


def test_paired_differences_cancel_what_two_settings_share():
    """The same videos under both settings differ by exactly 0; a still video against the world's own
    has a clearly negative motion difference; unequal world counts are refused."""
    from framepack_lab.evaluate import paired_differences

    seeds = heldout_seeds(5)
    moving = [world_parts(world.video(s, 17), s) for s in seeds]
    still = [world_parts(np.repeat(world.video(s, 1), 17, axis=0), s) for s in seeds]
    same = paired_differences(moving, moving)
    assert all(same[k] == (0.0, 0.0) for k in ("presence", "motion", "drift"))
    lo, hi = paired_differences(still, moving)["motion"]
    assert hi < -0.5
    with pytest.raises(ValueError, match="same worlds under both settings"):
        paired_differences(moving, still[:4])
