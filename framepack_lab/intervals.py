"""How sure is a figure measured on a few worlds? Bootstrap intervals over worlds.

`evaluate`'s figures pool 16 or so held-out worlds, and one sample of 16 can differ from the next
by as much as a training lever moves them (the README's "How much is the seed?"). A percentile
bootstrap shows that spread from one sample: draw as many worlds as were measured, with
replacement, from the measured ones; pool each draw the way the figure is pooled; the central
``level`` of the draws' figures is the interval (Efron and Tibshirani, *An Introduction to the
Bootstrap*, ch. 13). It assumes the worlds are independent draws, which held-out seeds are; it
cannot see the seed of the training run, only the choice of worlds.

Why not the Student-t intervals of :mod:`framepack_lab.table1` and :mod:`framepack_lab.table2`:
those are intervals of a *mean over worlds* of a per-world figure. `evaluate`'s figures are pooled
instead (presence over all sprites and frames, size kept over all sprites, motion a ratio of summed
lengths, the worst frame a minimum of the pooled curve), and no t interval covers a minimum or a
ratio of sums; re-pooling resampled worlds does.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

BOOTSTRAP_DRAWS = 1000
INTERVAL_LEVEL = 0.9  # the central 90% of the draws


def bootstrap(parts: Sequence, pool: Callable[[list], dict], names: Sequence[str],
              draws: int = BOOTSTRAP_DRAWS, level: float = INTERVAL_LEVEL, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile intervals ``{name: (low, high)}`` of the figures ``pool(parts)[name]``.

    ``parts``: one entry per world (e.g. :func:`framepack_lab.evaluate.world_parts`); ``pool``
    turns a list of them into a dict of figures. Each of ``draws`` draws pools ``len(parts)`` parts
    drawn with replacement (seeded by ``seed``, so the same parts give the same intervals); a draw
    whose figure is NaN (no sprite in any drawn world) is left out of that figure's interval."""
    if len(parts) < 2:
        raise ValueError(f"a bootstrap over worlds needs at least 2 worlds, got {len(parts)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.9 for a 90% interval), got {level}")
    if draws < 10:
        raise ValueError(f"draws must be at least 10, got {draws}")
    rng = np.random.default_rng(seed)
    values = {n: np.empty(draws) for n in names}
    for i in range(draws):
        figures = pool([parts[j] for j in rng.integers(len(parts), size=len(parts))])
        for n in names:
            values[n][i] = figures[n]
    tail = 100 * (1 - level) / 2
    out = {}
    for n, v in values.items():
        v = v[~np.isnan(v)]
        out[n] = (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) if len(v) else (np.nan, np.nan)
    return out
