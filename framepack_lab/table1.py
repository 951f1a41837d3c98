"""A toy Table 1: sampling orders x schedules x held-out worlds, drift measured per metric.

    python -m framepack_lab.table1 [--preset full|smoke] [--out build]     (or: make table1)

For every row (an order with a schedule) and every held-out world, the embedded model generates
a video from the world's first frame; each per-frame metric of :mod:`framepack_lab.metrics` gives
a start-end contrast (the paper's Delta-drift), and ``dynamic`` also gives its mean level (the
paper's Dynamic column). Writes ``OUT/table1_raw.csv`` (one line per video), ``OUT/table1.csv``
(mean and standard deviation per row) and ``OUT/table1.png``.

The notebooks' sweeps (tail options, sampling orders) are the same computation on other rows:
:func:`sweep` runs a list of rows over held-out worlds, all worlds of a row as one batch
(:func:`~framepack_lab.generate.generate_many`, one seed per world), and returns per-row videos
and metrics::

    runs = table1.sweep(backend, [("vanilla", "td_f16k4f4k2f2k1_g4"), ("f1", None)], worlds=4)
    raw = table1.raw_table(runs)            # one line per video
    summary = table1.summarize(raw)         # mean and std per row
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import metrics, world
from .generate import generate_many
from .plan import Plan
from .schedule import PRESETS as SCHEDULES
from .schedule import Schedule

# The paper's rows where the tiny model supports them, scaled to its 4-frame sections.
ROWS = [(order, SCHEDULES[key].name) for order, key in [
    ("vanilla", "temporal_kernel"),
    ("vanilla", "temporal_kernel_1x"),
    ("vanilla", "geometric"),
    ("anti_drifting", "anti_drifting"),
    ("anti_drifting", "anti_drifting_1x"),
    ("inverted_anti_drifting", "inverted"),
    ("inverted_anti_drifting", "inverted_official_history"),
    ("f1", "important_start"),
]]
PRESETS = {
    "full": {"rows": ROWS, "seeds": 16, "frames": 64, "steps": 16},
    "smoke": {"rows": [ROWS[0], ROWS[5]], "seeds": 2, "frames": 17, "steps": 4},
}
DELTA_METRICS = tuple(metrics.PER_FRAME)  # a start-end contrast for every per-frame metric
# per-video figures besides delta_<metric>: the mean of dynamic (the paper's Dynamic column) and
# the share of first-frame sprites still found in the last frame
LEVEL_METRICS = ("dynamic_mean", "survival_last")


@dataclass
class RowRun:
    """One row of a sweep: an order with a schedule, generated from every world's first frame.

    Attributes:
        order: the sampling order.
        schedule: the schedule's name as it ran (the order's default when the row gave None).
        plan: the plan every world of the row ran.
        worlds: held-out world seeds, one per video; ``seeds``: each video's generation seed.
        metrics: one dict per video (see :func:`measure`) plus ``seconds``, the row's wall time
            divided by its number of videos.
        videos: one ``(T, H, W, 3)`` float video per world (empty when the sweep did not keep them).
    """

    order: str
    schedule: str
    plan: Plan
    worlds: list[int]
    seeds: list[int]
    metrics: list[dict[str, float]]
    videos: list[np.ndarray] = field(default_factory=list)

    def records(self) -> list[dict]:
        """One dict per video: ``order``, ``schedule``, ``world``, ``seed`` and its metrics."""
        return [{"order": self.order, "schedule": self.schedule, "world": w, "seed": s, **m}
                for w, s, m in zip(self.worlds, self.seeds, self.metrics)]


def measure(video: np.ndarray) -> dict[str, float]:
    """The Table 1 figures of one video ``(T, H, W, 3)``: ``delta_<metric>`` (start-end contrast)
    for each of :data:`DELTA_METRICS`, ``dynamic_mean`` and ``survival_last``."""
    curves, table = metrics.drift_report(video, DELTA_METRICS)
    out = {f"delta_{m}": float(table.loc[m, "delta"]) for m in DELTA_METRICS}
    out["dynamic_mean"] = float(curves["dynamic"][1:].mean())
    out["survival_last"] = metrics.sprite_survival(video, len(video) - 1)
    return out


def _world_seeds(worlds: int | Iterable[int]) -> list[int]:
    if isinstance(worlds, (int, np.integer)):
        if worlds < 1:
            raise ValueError(f"worlds must be at least 1 (how many held-out worlds), got {worlds}")
        return list(world.HELDOUT_SEEDS)[:int(worlds)]
    seeds = [int(w) for w in worlds]
    if not seeds:
        raise ValueError("worlds is empty; give a number of held-out worlds or a list of world seeds")
    return seeds


def sweep(backend, rows: Sequence[tuple[str, "Schedule | str | None"]], worlds: int | Iterable[int] = 16,
          seeds: Iterable[int] | None = None, frames: int = 64, steps: int = 16, keep_videos: bool = True,
          progress: bool = True) -> list[RowRun]:
    """Generate every row on every world and measure each video.

    Args:
        backend: e.g. ``load_tiny()``.
        rows: ``(order, schedule)`` pairs; a schedule is a name, a preset key, a
            :class:`~framepack_lab.schedule.Schedule` or None (the order's default).
        worlds: how many held-out worlds (the first of :data:`~framepack_lab.world.HELDOUT_SEEDS`),
            or the world seeds themselves; each video starts from its world's first frame.
        seeds: the generation seed of each world's video (default: the world's seed).
        frames: latent frames per video; ``steps``: sampler steps per section.
        keep_videos: keep the generated videos in :attr:`RowRun.videos` (``T*H*W*3`` floats each).
        progress: a tqdm bar over videos.

    Returns:
        One :class:`RowRun` per row, in the order given.
    """
    from tqdm.auto import tqdm

    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; give (order, schedule) pairs, e.g. [('vanilla', None)]")
    worlds = _world_seeds(worlds)
    seeds = worlds if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(worlds):
        raise ValueError(f"{len(worlds)} worlds but {len(seeds)} seeds; give one seed per world (or none)")
    firsts = [world.video(w, 1)[0] for w in worlds]
    runs = []
    with tqdm(total=len(rows) * len(worlds), desc="sweep", unit="video", disable=not progress) as bar:
        for order, schedule in rows:
            t0 = time.perf_counter()
            results = generate_many(backend, firsts, n_frames=frames, order=order, schedule=schedule, steps=steps,
                                    seeds=seeds)
            seconds = (time.perf_counter() - t0) / len(worlds)
            plan = results[0].plan
            runs.append(RowRun(order, plan.schedule.name, plan, list(worlds), list(seeds),
                               [{**measure(r.frames), "seconds": seconds} for r in results],
                               [r.frames for r in results] if keep_videos else []))
            bar.update(len(worlds))
    return runs


def raw_table(runs: Iterable[RowRun]):
    """A pandas DataFrame with one line per video of ``runs``."""
    import pandas as pd

    return pd.DataFrame.from_records([rec for run in runs for rec in run.records()])


def summarize(raw):
    """Mean and standard deviation per row (``order``, ``schedule``) of a :func:`raw_table`:
    columns ``<figure>_mean`` and ``<figure>_std``, and ``n`` (videos, i.e. worlds, in the row)."""
    cols = [c for c in raw.columns if c.startswith("delta_")] + list(LEVEL_METRICS) + ["seconds"]
    groups = raw.groupby(["order", "schedule"], sort=False)
    summary = groups[cols].agg(["mean", "std"])
    summary.columns = [f"{a}_{b}" for a, b in summary.columns]
    summary["n"] = groups.size()
    return summary.reset_index()


NEGLIGIBLE = 0.10  # paired_difference: "negligible" when the whole 95% interval is within 10% of the reference mean


def paired_difference(raw, metric: str, reference: str, other: str, key: str = "schedule",
                      margin: float = NEGLIGIBLE) -> dict:
    """Paired test of ``other`` against ``reference`` on one figure, world by world.

    For every world both rows ran, ``d = metric(other) - metric(reference)``; the mean of ``d``
    gets a two-sided 95% Student-t interval (:func:`framepack_lab.table2.t_quantile`). The
    verdict is an equivalence test against ``margin`` (a share of the reference's mean):

    - ``"negligible"``: the whole interval lies within ``+-margin * |mean(reference)|``;
    - ``"higher"`` / ``"lower"``: the interval excludes 0 (``other`` is higher / lower);
    - ``"inconclusive"``: the interval holds 0 but reaches past the margin (more worlds needed).

    Args:
        raw: a :func:`raw_table` (one line per video; columns ``world``, ``key`` and ``metric``).
        metric: the column compared, e.g. ``"delta_colour_drift"``.
        reference, other: values of ``key`` naming the two rows.
        key: the column that tells the rows apart (``"schedule"``, ``"order"``, or one you added).
        margin: the equivalence margin, a share of the reference mean.

    Returns:
        ``{"mean", "lo", "hi", "sd", "n", "reference_mean", "relative", "margin", "verdict"}``;
        ``relative`` is the mean difference over the reference mean.
    """
    from .table2 import summarise

    for name, value in (("reference", reference), ("other", other)):
        if value not in set(raw[key]):
            raise ValueError(f"{name}={value!r} is not a value of column {key!r} ({sorted(set(raw[key]))})")
    if metric not in raw:
        raise ValueError(f"metric {metric!r} is not a column of the table; use one of {list(raw.columns)}")
    a = raw[raw[key] == reference].set_index("world")[metric]
    b = raw[raw[key] == other].set_index("world")[metric]
    worlds = [w for w in a.index if w in b.index]
    if len(worlds) < 2:
        raise ValueError(f"{reference!r} and {other!r} share {len(worlds)} world(s); a paired interval needs at "
                         "least 2 (run both rows on the same worlds)")
    d = summarise(b.loc[worlds].to_numpy() - a.loc[worlds].to_numpy())
    ref = float(a.loc[worlds].mean())
    lo, hi = d["mean"] - d["ci95"], d["mean"] + d["ci95"]
    bound = margin * abs(ref)
    if -bound <= lo and hi <= bound:
        verdict = "negligible"
    elif lo > 0:
        verdict = "higher"
    elif hi < 0:
        verdict = "lower"
    else:
        verdict = "inconclusive"
    return {"mean": d["mean"], "lo": lo, "hi": hi, "sd": d["sd"], "n": d["n"], "reference_mean": ref,
            "relative": d["mean"] / ref if ref else float("nan"), "margin": margin, "verdict": verdict}


def run(backend, rows=ROWS, seeds: int = 16, frames: int = 64, steps: int = 16, progress: bool = True):
    """The toy Table 1: :func:`sweep` over the first ``seeds`` held-out worlds (videos not kept).

    Returns:
        ``(raw, summary)`` pandas DataFrames (:func:`raw_table`, :func:`summarize`).
    """
    raw = raw_table(sweep(backend, rows, seeds, frames=frames, steps=steps, keep_videos=False, progress=progress))
    return raw, summarize(raw)


def main(argv=None) -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .models.tiny import load_tiny
    from .viz import plot_table1

    p = argparse.ArgumentParser(description="Toy Table 1: drift per sampling order and schedule.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="full")
    p.add_argument("--out", default="build")
    p.add_argument("--checkpoint", default=None)
    a = p.parse_args(argv)
    cfg = PRESETS[a.preset]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    raw, summary = run(load_tiny(a.checkpoint), cfg["rows"], cfg["seeds"], cfg["frames"], cfg["steps"])
    raw.to_csv(out / "table1_raw.csv", index=False)
    summary.to_csv(out / "table1.csv", index=False)
    fig = plot_table1(summary)
    fig.savefig(out / "table1.png", dpi=110, bbox_inches="tight")
    show = ["order", "schedule", "delta_colour_drift_mean", "delta_clarity_mean", "dynamic_mean_mean", "survival_last_mean"]
    with np.printoptions(precision=4):
        print(summary[show].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {out / 'table1.csv'}, {out / 'table1_raw.csv'}, {out / 'table1.png'} "
          f"in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
