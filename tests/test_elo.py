"""The human study's maths (Elo, K = 32) and the blind A/B panel."""

import math
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from framepack_lab import elo


def test_expected_score_exact():
    assert elo.expected(1000, 1000) == 0.5
    assert math.isclose(elo.expected(1400, 1000), 10 / 11)
    assert math.isclose(elo.expected(1000, 1400), 1 / 11)
    assert math.isclose(elo.expected(1200, 1000), 0.7597469266479578)


def test_update_exact_and_zero_sum():
    assert elo.update(1000, 1000, 1) == (1016.0, 984.0)       # K/2 each way between equals
    assert elo.update(1000, 1000, 0.5) == (1000.0, 1000.0)
    assert elo.update(1000, 1000, 0) == (984.0, 1016.0)
    a, b = elo.update(1400, 1000, 1)                           # the favourite wins: + 32/11
    assert math.isclose(a, 1400 + 32 / 11) and math.isclose(b, 1000 - 32 / 11)
    a, b = elo.update(1200, 1000, 0)                           # an upset: - 32 * 0.7597...
    assert math.isclose(a, 1175.6880983472654) and math.isclose(b, 1024.3119016527346)
    assert math.isclose(a + b, 2200)
    assert elo.update(1000, 1000, 1, k=16) == (1008.0, 992.0)


@pytest.mark.parametrize("score", [2, -1, 0.3, "left", True, None])
def test_update_refuses_bad_scores(score):
    with pytest.raises(ValueError, match="1 \\(A better\\), 0.5 \\(tie\\) or 0"):
        elo.update(1000, 1000, score)


def test_update_refuses_bad_k():
    with pytest.raises(ValueError, match="K must be a positive number"):
        elo.update(1000, 1000, 1, k=0)
    with pytest.raises(ValueError, match="K must be a positive number"):
        elo.EloBoard(["a", "b"], k=-32)


def test_pairs_cover_every_pair_per_round_with_random_sides():
    names = ["a", "b", "c", "d"]
    drawn = elo.pairs(names, random.Random(1), rounds=3)
    assert len(drawn) == 3 * 6
    assert Counter(frozenset(p) for p in drawn) == {frozenset(p): 3 for p in
                                                   [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"),
                                                    ("c", "d")]}
    for r in range(3):  # each round holds every pair once
        assert len({frozenset(p) for p in drawn[6 * r:6 * r + 6]}) == 6
    assert drawn == elo.pairs(names, 1, rounds=3)  # a seed is the same as Random(seed)
    sides = Counter(p[0] < p[1] for p in elo.pairs(names, 0, rounds=50))
    assert 100 < sides[True] < 200 and sides[True] + sides[False] == 300  # both sides drawn


def test_pairs_refuse_bad_input():
    with pytest.raises(ValueError, match="two distinct names"):
        elo.pairs(["a"], 0)
    with pytest.raises(ValueError, match="two distinct names"):
        elo.pairs(["a", "a"], 0)
    with pytest.raises(ValueError, match="rounds must be"):
        elo.pairs(["a", "b"], 0, rounds=0)


def test_board_records_games_and_ranks():
    board = elo.EloBoard(["x", "y", "z"])
    assert board.ratings == {"x": 1000.0, "y": 1000.0, "z": 1000.0} and board.k == 32
    board.record("x", "y", 1)      # x 1016, y 984
    board.record("z", "y", 0.5)    # z vs 984: E_z = 1/(1+10^(-16/400))
    ez = 1 / (1 + 10 ** (-16 / 400))
    assert math.isclose(board.ratings["z"], 1000 + 32 * (0.5 - ez))
    assert math.isclose(sum(board.ratings.values()), 3000)  # zero-sum: the mean stays at the start
    r = board.ranking()
    assert list(r["name"]) == ["x", "z", "y"]
    assert list(r.columns) == ["rank", "name", "elo", "games", "wins", "ties", "losses"]
    x = r.set_index("name").loc["x"]
    assert (x["games"], x["wins"], x["ties"], x["losses"], x["rank"]) == (1, 1, 0, 0, 1)
    z = r.set_index("name").loc["z"]
    assert (z["games"], z["ties"]) == (1, 1)
    with pytest.raises(ValueError, match="not on this board"):
        board.record("x", "w", 1)
    with pytest.raises(ValueError, match="two different contestants"):
        board.record("x", "x", 1)


def test_equal_ratings_share_a_rank():
    board = elo.EloBoard(["a", "b", "c", "d"])
    board.record("a", "b", 1)
    board.record("d", "c", 0)   # a = c = 1016, b = d = 984
    r = board.ranking()
    assert list(r["rank"]) == [1, 1, 3, 3] and list(r["name"]) == ["a", "c", "b", "d"]


def _summary():
    return pd.DataFrame({"row": ["good", "mid", "bad"], "drift_mean": [0.1, 0.2, 0.3],
                         "presence_mean": [0.9, 1.0, 0.5]})


def test_beside_metrics_ranks_each_metric_its_way():
    board = elo.EloBoard(["good", "mid", "bad"])
    df = elo.beside_metrics(board, _summary()).set_index("name")
    assert df.loc["good", "drift rank"] == 1 and df.loc["bad", "drift rank"] == 3   # lower drift is better
    assert df.loc["mid", "presence rank"] == 1 and df.loc["bad", "presence rank"] == 3  # higher presence is better
    assert df.loc["mid", "drift"] == 0.2
    with pytest.raises(ValueError, match="no motion_mean column"):
        elo.beside_metrics(board, _summary(), metrics=("motion",))


def test_judge_by_prefers_the_better_metric():
    raw = pd.DataFrame({"row": ["a", "b", "a", "b"], "world": [1, 1, 2, 2], "drift": [0.1, 0.3, 0.5, float("nan")],
                        "presence": [1.0, 0.5, 0.5, 0.5]})
    j = elo.judge_by(raw, "drift")
    assert j("a", "b", 1) == "left" and j("b", "a", 1) == "right" and j("a", "b", 2) == "tie"
    assert elo.judge_by(raw, "presence")("b", "a", 1) == "right"
    assert elo.judge_by(raw, "presence")("b", "a", 2) == "tie"
    with pytest.raises(ValueError, match="no 'clarity' column"):
        elo.judge_by(raw, "clarity")
    with pytest.raises(ValueError, match="in world 3"):
        j("a", "b", 3)


# ----------------------------------------------------------------------------- the panel
def _videos(n_rows=3, n_worlds=2, T=8):
    g = np.random.default_rng(0)
    return {f"row {i}": [g.random((T, 16, 16, 3)).astype(np.float32) for _ in range(n_worlds)] for i in range(n_rows)}


def test_panel_judges_blind_pairs_and_updates_elo():
    pytest.importorskip("ipywidgets")
    from framepack_lab.widgets import EloPanel

    summary = pd.DataFrame({"row": ["row 0", "row 1", "row 2"], "drift_mean": [0.3, 0.2, 0.1],
                            "presence_mean": [1.0, 0.9, 0.8]})
    p = EloPanel(_videos(), summary, worlds=[400, 401], seed=3)
    assert len(p.trials) == 3 and p.board.k == 32
    assert "hidden" in p.left_label.value and "row" not in p.left_label.value  # blind
    first = p.current
    assert first.world in (400, 401)
    assert p.choose("left") == first
    assert p.board.ratings[first.left] == 1016.0 and p.board.ratings[first.right] == 984.0
    second = p.current
    p.choose("skip")                                      # a skip changes no rating
    assert sum(p.board.ratings.values()) == 3000 and len(p.board.games) == 1
    p.reveal.value = True
    assert p.current.left in p.left_label.value and "last pair" in p.status.value
    p.choose("tie")
    assert p.current is None and all(b.disabled for b in p.buttons.values())
    assert [c for _, c in p.judged] == ["left", "skip", "tie"] and p.judged[1][0] == second
    table = p.ranking()
    assert {"elo", "drift rank", "presence rank"} <= set(table.columns)
    assert table.set_index("name").loc["row 2", "drift rank"] == 1
    html = p.snapshot().data
    assert "all 3 pairs done" in html and "drift rank" in html
    with pytest.raises(ValueError, match="all 3 pairs are judged"):
        p.choose("left")


def test_panel_refuses_bad_input():
    pytest.importorskip("ipywidgets")
    from framepack_lab.widgets import EloPanel

    with pytest.raises(ValueError, match="at least two rows"):
        EloPanel({"a": _videos()["row 0"]})
    v = _videos()
    v["row 1"] = v["row 1"][:1]
    with pytest.raises(ValueError, match="the same worlds"):
        EloPanel(v)
    with pytest.raises(ValueError, match="one label per world"):
        EloPanel(_videos(), worlds=[1, 2, 3])
    p = EloPanel(_videos(), seed=0)
    with pytest.raises(ValueError, match="choice must be one of left, right, tie, skip"):
        p.choose("both")
    assert p.position == 0 and "pair 1 of 3" in p.status.value
    assert "hidden" in p.snapshot().data


def test_panel_headless_study_by_a_simulated_reader_finds_the_metric_ranking():
    pytest.importorskip("ipywidgets")
    from framepack_lab.widgets import EloPanel

    raw = pd.DataFrame([{"row": f"row {i}", "world": w, "drift": 0.1 * (i + 1)} for i in range(3) for w in (0, 1)])
    p = EloPanel(_videos(), seed=1, rounds=4)
    judge = elo.judge_by(raw, "drift")
    while p.current is not None:
        t = p.current
        p.choose(judge(t.left, t.right, t.world))
    assert list(p.ranking()["name"]) == ["row 0", "row 1", "row 2"]


def test_gif_has_every_frame_upscaled():
    pytest.importorskip("ipywidgets")
    import io

    from PIL import Image

    from framepack_lab.widgets.elo_panel import gif_bytes

    video = np.broadcast_to(np.linspace(0, 1, 5, dtype=np.float32)[:, None, None, None], (5, 16, 16, 3))
    data = gif_bytes(video, fps=10, scale=2)
    img = Image.open(io.BytesIO(data))
    assert data[:6] == b"GIF89a" and img.n_frames == 5 and img.size == (32, 32)
    assert img.info["duration"] == 100 and img.info["loop"] == 0
