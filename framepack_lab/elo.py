"""The paper's human study, as maths: blind A/B pairs scored as Elo ratings (K = 32).

The paper shows people two videos from two methods, side by side and unlabelled, asks which is
better, and turns the answers into Elo scores (its Table 2 column "ELO", with K = 32). This
module is that bookkeeping, so a reader can run the study on our toy rows
(:class:`~framepack_lab.widgets.EloPanel`)::

    board = EloBoard(["vanilla", "inverted anti-drifting"])
    board.record("inverted anti-drifting", "vanilla", 1.0)   # the first was judged better
    board.ranking()                                          # a DataFrame, best first

Conventions (the paper publishes K = 32 but not its starting rating): every rating starts at
:data:`START` = 1000, the usual Elo convention; with K = 32 a win between equals moves each
rating by 16. Elo is zero-sum, so the mean rating stays at :data:`START` whatever is judged.
Plain Python (no torch, no numpy); pandas only for :meth:`EloBoard.ranking`.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

START = 1000.0   # every rating's start (the usual Elo convention; the paper does not state its own)
K_FACTOR = 32.0  # the paper's K
SCALE = 400.0    # Elo's logistic scale: a 400-point lead means 10:1 expected odds
SCORES = {"left": 1.0, "right": 0.0, "tie": 0.5}  # a choice as the left video's score


def expected(ra: float, rb: float) -> float:
    """Expected score of A against B: ``E_A = 1 / (1 + 10^((R_B - R_A) / 400))`` (in [0, 1]).

    ``expected(1000, 1000) == 0.5``; ``expected(1400, 1000) == 10 / 11``.
    """
    return 1.0 / (1.0 + 10.0 ** ((float(rb) - float(ra)) / SCALE))


def _check_score(score) -> float:
    if isinstance(score, bool) or score not in (0, 0.5, 1):
        raise ValueError(f"a score is 1 (A better), 0.5 (tie) or 0 (B better), got {score!r}")
    return float(score)


def _check_k(k) -> float:
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not k > 0:
        raise ValueError(f"K must be a positive number (the paper uses 32), got {k!r}")
    return float(k)


def update(ra: float, rb: float, score_a: float, k: float = K_FACTOR) -> tuple[float, float]:
    """Both ratings after one game: ``R'_A = R_A + K (S_A - E_A)``, ``R'_B = R_B + K (S_B - E_B)``
    with ``S_B = 1 - S_A``, ``E_B = 1 - E_A`` (so the sum of the two ratings is unchanged).

    Args:
        ra, rb: ratings before the game.
        score_a: A's score: 1 (A better), 0.5 (tie) or 0 (B better); ``ValueError`` otherwise.
        k: the K factor (the paper's 32); must be positive.

    Returns:
        ``(R'_A, R'_B)``; e.g. ``update(1000, 1000, 1) == (1016.0, 984.0)``.
    """
    s, k = _check_score(score_a), _check_k(k)
    ea = expected(ra, rb)
    delta = k * (s - ea)  # R'_A - R_A = K (S_A - E_A) = -(R'_B - R_B)
    return float(ra) + delta, float(rb) - delta


def pairs(names, rng: random.Random | int | None = None, rounds: int = 1) -> list[tuple[str, str]]:
    """Blind pairs for a study: every unordered pair of ``names`` once per round, the pairs of each
    round in random order, each with a random left/right side.

    Args:
        names: at least two distinct names.
        rng: a ``random.Random`` (or a seed for one); the draw is reproducible from it.
        rounds: how many times every pair appears.

    Returns:
        ``[(left, right), ...]`` of length ``rounds * n (n - 1) / 2``.
    """
    names = list(names)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"pairs need at least two distinct names, got {names!r}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a whole number >= 1, got {rounds!r}")
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    out = []
    for _ in range(rounds):
        round_ = list(itertools.combinations(names, 2))
        rng.shuffle(round_)
        out.extend((a, b) if rng.random() < 0.5 else (b, a) for a, b in round_)
    return out


@dataclass
class EloBoard:
    """Ratings of named contestants (here: Table 2 rows), updated game by game.

    Args:
        names: the contestants; each starts at ``start``.
        k: the K factor (the paper's 32).
        start: the starting rating (:data:`START`).

    Attributes:
        ratings: ``{name: rating}``; ``games``: ``[(a, b, score_a), ...]`` in the order recorded.
    """

    names: list
    k: float = K_FACTOR
    start: float = START
    ratings: dict = field(init=False)
    games: list = field(init=False, default_factory=list)

    def __post_init__(self):
        self.names = list(self.names)
        if len(self.names) < 2 or len(set(self.names)) != len(self.names):
            raise ValueError(f"an Elo board needs at least two distinct names, got {self.names!r}")
        self.k = _check_k(self.k)
        self.ratings = {n: float(self.start) for n in self.names}

    def record(self, a: str, b: str, score_a: float) -> tuple[float, float]:
        """One game: ``a`` against ``b`` with ``a``'s score (1, 0.5 or 0); returns the new ratings."""
        for n in (a, b):
            if n not in self.ratings:
                raise ValueError(f"{n!r} is not on this board; it has {self.names}")
        if a == b:
            raise ValueError(f"a game needs two different contestants, got {a!r} twice")
        self.ratings[a], self.ratings[b] = update(self.ratings[a], self.ratings[b], score_a, self.k)
        self.games.append((a, b, _check_score(score_a)))
        return self.ratings[a], self.ratings[b]

    def ranking(self):
        """A DataFrame, best first: ``name``, ``elo``, ``games``, ``wins``, ``ties``, ``losses``,
        ``rank`` (1 = best; equal ratings share a rank)."""
        import pandas as pd

        rows = []
        for n in self.names:
            won = sum(1 for a, b, s in self.games if (a == n and s == 1) or (b == n and s == 0))
            tied = sum(1 for a, b, s in self.games if n in (a, b) and s == 0.5)
            played = sum(1 for a, b, _ in self.games if n in (a, b))
            rows.append({"name": n, "elo": self.ratings[n], "games": played, "wins": won, "ties": tied,
                         "losses": played - won - tied})
        df = pd.DataFrame(rows).sort_values("elo", ascending=False, kind="stable").reset_index(drop=True)
        df.insert(0, "rank", df["elo"].rank(ascending=False, method="min").astype(int))
        return df


METRIC_RANKS = ("drift", "presence")  # Table 2 metrics whose rankings the study's is set beside


def beside_metrics(board: EloBoard, summary=None, metrics=METRIC_RANKS):
    """The board's ranking with each row's rank by Table 2 metrics beside it.

    Args:
        board: the study's ratings.
        summary: a :func:`framepack_lab.table2.run` summary (``row``, ``{metric}_mean``) or None.
        metrics: metrics to rank by (lower drift is better, higher otherwise; see
            :func:`framepack_lab.table2.ranking`).

    Returns:
        :meth:`EloBoard.ranking` plus ``{metric}`` (the row's mean) and ``{metric} rank`` columns for
        each metric (NaN for a name the summary lacks).
    """
    df = board.ranking()
    if summary is None:
        return df
    from .table2 import ranking

    missing = [m for m in metrics if f"{m}_mean" not in summary]
    if missing:
        raise ValueError(f"the summary has no {', '.join(f'{m}_mean' for m in missing)} column; pass a "
                         "table2.run summary or choose metrics among its columns")
    for m in metrics:
        order = ranking(summary, m)
        means = dict(zip(summary["row"], summary[f"{m}_mean"]))
        df[m] = [means.get(n, float("nan")) for n in df["name"]]
        df[f"{m} rank"] = [order.index(n) + 1 if n in order else float("nan") for n in df["name"]]
    return df


def judge_by(raw, metric: str = "drift", tie: float = 0.0):
    """A simulated reader for headless runs: prefers the video with the better ``metric`` in its world.

    Args:
        raw: a :func:`framepack_lab.table2.run` raw table (``row``, ``world``, ``metric``).
        metric: lower is better for ``drift``, higher for the others.
        tie: values closer than this are a tie (so is a missing value, NaN).

    Returns:
        ``judge(left, right, world) -> "left" | "right" | "tie"``.
    """
    if metric not in raw:
        raise ValueError(f"the raw table has no {metric!r} column; it has {list(raw.columns)}")
    value = {(r, w): v for r, w, v in zip(raw["row"], raw["world"], raw[metric])}
    sign = -1.0 if metric == "drift" else 1.0

    def judge(left: str, right: str, world) -> str:
        for key in ((left, world), (right, world)):
            if key not in value:
                raise ValueError(f"no {metric} for row {key[0]!r} in world {key[1]!r} in the raw table")
        d = sign * (value[(left, world)] - value[(right, world)])
        return "tie" if d != d or abs(d) <= tie else "left" if d > 0 else "right"

    return judge
