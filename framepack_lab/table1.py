"""A toy Table 1: sampling orders x schedules x held-out worlds, drift measured per metric.

    python -m framepack_lab.table1 [--preset full|smoke] [--out build]     (or: make table1)

For every row (an order with a schedule) and every held-out world, the embedded model generates
a video from the world's first frame; each per-frame metric of :mod:`framepack_lab.metrics` gives
a start-end contrast (the paper's Delta-drift), and ``dynamic`` also gives its mean level (the
paper's Dynamic column). Writes ``OUT/table1_raw.csv`` (one line per video), ``OUT/table1.csv``
(mean and standard deviation per row) and ``OUT/table1.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from . import metrics, world
from .generate import generate
from .schedule import PRESETS as SCHEDULES

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
DELTA_METRICS = ("colour_drift", "clarity", "colourfulness", "dynamic", "motion_smoothness")


def run(backend, rows=ROWS, seeds: int = 16, frames: int = 64, steps: int = 16, progress: bool = True):
    """Generate and measure; returns ``(raw, summary)`` pandas DataFrames."""
    import pandas as pd
    from tqdm.auto import tqdm

    worlds = list(world.HELDOUT_SEEDS)[:seeds]
    firsts = {s: world.video(s, 1)[0] for s in worlds}
    records = []
    bar = tqdm(total=len(rows) * len(worlds), desc="table1", disable=not progress)
    for order, schedule in rows:
        for s in worlds:
            t0 = time.perf_counter()
            r = generate(backend, firsts[s], n_frames=frames, order=order, schedule=schedule, steps=steps, seed=s)
            curves, table = metrics.drift_report(r.frames, DELTA_METRICS)
            rec = {"order": order, "schedule": schedule, "world": s, "seconds": time.perf_counter() - t0,
                   "dynamic_mean": float(curves["dynamic"][1:].mean())}
            rec.update({f"delta_{m}": float(table.loc[m, "delta"]) for m in DELTA_METRICS})
            sv = metrics.sprite_survival(r.frames, len(r.frames) - 1)
            rec["survival_last"] = sv
            records.append(rec)
            bar.update(1)
    bar.close()
    raw = pd.DataFrame.from_records(records)
    cols = [c for c in raw.columns if c.startswith("delta_")] + ["dynamic_mean", "survival_last", "seconds"]
    summary = raw.groupby(["order", "schedule"], sort=False)[cols].agg(["mean", "std"])
    summary.columns = [f"{a}_{b}" for a, b in summary.columns]
    return raw, summary.reset_index()


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
