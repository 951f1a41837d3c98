"""The paper's Table 2 at toy scale: inverted anti-drifting against the other ways to fight drift.

    python -m framepack_lab.table2 [--preset full|smoke] [--out build]     (or: make table2)

Each row of the paper's Table 2 is realised with the embedded model as closely as it allows
(:data:`ROWS`, each with a one-line note of how), and measured over held-out worlds with the
figures of :mod:`framepack_lab.evaluate`, over **every** frame (the last frame alone would flatter
the inverted order, which generates the end first):

* **drift**: the start-end contrast (Eq. 4) of the colour-statistics distance to frame 0;
* **dynamic**: sprite path length relative to the world's own (``motion`` in ``evaluate``);
* **presence** over all frames, at the **worst** frame, and **size kept**.

Every figure is a mean over worlds with its standard deviation and a 95% interval of the mean
(``t`` quantile), so a ranking can be read with its uncertainty. The paper's row *causal
attention* is left out: our checkpoint was trained with full attention inside a step, and a
causal mask it never saw would measure the mask's novelty, not causal attention (it needs its own
training run).

Writes ``OUT/table2.csv`` (summary), ``OUT/table2_raw.csv`` (one line per row and world) and
``OUT/table2.png``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .evaluate import heldout_seeds, run_order, score_videos
from .plan import DEFAULT_SCHEDULES

VANILLA = DEFAULT_SCHEDULES["vanilla"]  # td_f16k4f4k2f2k1_g4: the packed history every vanilla row shares
METRICS = ("drift", "motion", "presence", "worst", "size_kept")
LABELS = {"drift": "drift (start-end contrast, lower is better)", "motion": "dynamic (path vs world's)",
          "presence": "sprites present (all frames)", "worst": "present at worst frame",
          "size_kept": "size kept"}


@dataclass(frozen=True)
class Row:
    """One row of the toy Table 2: a sampling order, a schedule and generation options."""

    name: str
    order: str
    schedule: str | None
    note: str
    options: dict = field(default_factory=dict)  # history_noise, history_guidance


ROWS = (
    Row("repeating image-to-video", "vanilla", "td_f1k1_g4",
        "each section sees only the previous section's last frame (schedule td_f1k1_g4)", {"history_noise": 0.0}),
    Row("anchor frames", "f1", "f1k1_x_f2k1_g4",
        "the first frame kept as context beside the last two frames (f1k1_x_f2k1_g4), no compressed history",
        {"history_noise": 0.0}),
    Row("history noise 0.1", "vanilla", VANILLA,
        "vanilla, its history noised to sigma_test 0.1 (Diffusion Forcing; trained with noise up to 0.6)",
        {"history_noise": 0.1}),
    Row("history noise 0.5", "vanilla", VANILLA, "vanilla, history noised to sigma_test 0.5", {"history_noise": 0.5}),
    Row("history guidance", "vanilla", VANILLA,
        "vanilla, v = v_none + 1.5 (v_history - v_none) (trained with 10% history dropout)",
        {"history_noise": 0.0, "history_guidance": 1.5}),
    Row("vanilla", "vanilla", VANILLA, "vanilla order, packed history, clean (no history noise)",
        {"history_noise": 0.0}),
    Row("vanilla + D", "vanilla", VANILLA + "+D256",
        "vanilla with discrete history: history latent pixels snapped to a K=256 K-means codebook",
        {"history_noise": 0.0}),
    Row("inverted anti-drifting", "inverted_anti_drifting", None,
        "the paper's order: generate backwards towards the clean first frame (official-style padding)",
        {"history_noise": 0.0}),
)
PAPER_TOP = ("inverted anti-drifting", "vanilla + D")  # the paper's best rows (ELO 1220, 1224)
PAPER_BOTTOM = "repeating image-to-video"             # its worst (ELO 1015)
PRESETS = {
    "full": {"rows": ROWS, "seeds": 16, "frames": 64, "steps": 20},
    "smoke": {"rows": (ROWS[0], ROWS[5], ROWS[6], ROWS[7]), "seeds": 2, "frames": 13, "steps": 3},
}
SEED_OFFSET = 400  # held-out worlds 400.. (the probes and tests use other offsets)


def t_quantile(n: int) -> float:
    """Two-sided 95% Student-t quantile for ``n`` samples (``n - 1`` degrees of freedom)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 19: 2.093, 24: 2.064,
             29: 2.045}  # df -> t(0.975, df)
    df = max(n - 1, 1)
    if df >= 30:
        return 1.96
    return table[max(k for k in table if k <= df)]  # the nearest tabulated df below: a wider interval


def summarise(values) -> dict[str, float]:
    """Mean, standard deviation and the 95% interval half-width of the mean of ``values`` (NaNs dropped)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return {"mean": float("nan"), "sd": float("nan"), "ci95": float("nan"), "n": 0}
    sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return {"mean": float(v.mean()), "sd": sd, "ci95": t_quantile(len(v)) * sd / math.sqrt(len(v)), "n": len(v)}


def run_row(backend, row: Row, seeds, n_frames: int = 64, steps: int = 20, seed: int = 0):
    """Generate the row's videos (one batch) and score each world; returns ``(per-world dicts, videos,
    seconds per video)``."""
    kw = dict(row.options)
    if row.schedule is not None:
        kw["schedule"] = row.schedule
    videos, secs = run_order(backend, row.order, seeds, n_frames, steps, seed, **kw)
    per_world = []
    for v, s in zip(videos, seeds):
        sc = score_videos([v], [s])
        per_world.append({"row": row.name, "world": s, **{m: sc[m] for m in METRICS}})
    return per_world, videos, secs


def run(backend, rows=ROWS, n_seeds: int = 16, n_frames: int = 64, steps: int = 20, progress: bool = True,
        keep_videos: bool = False):
    """The toy Table 2: ``(raw, summary, videos)``.

    ``raw`` is a DataFrame with one line per (row, world); ``summary`` one line per row with
    ``{metric}_mean``, ``_sd``, ``_ci95``, the seconds per video and the row's note; ``videos``
    ``{row name: [(T, H, W, 3)]}`` when ``keep_videos`` (else empty).
    """
    import pandas as pd

    seeds = heldout_seeds(n_seeds, SEED_OFFSET)
    raw, lines, videos = [], [], {}
    for row in rows:
        per_world, vids, secs = run_row(backend, row, seeds, n_frames, steps)
        raw.extend(per_world)
        line = {"row": row.name, "order": row.order, "schedule": row.schedule or "(order default)",
                "seconds_per_video": secs, "note": row.note}
        for m in METRICS:
            s = summarise([w[m] for w in per_world])
            line.update({f"{m}_mean": s["mean"], f"{m}_sd": s["sd"], f"{m}_ci95": s["ci95"]})
        lines.append(line)
        if keep_videos:
            videos[row.name] = vids
        if progress:
            print(f"  {row.name:26s} " + "  ".join(f"{m}={line[m + '_mean']:.3f}" for m in METRICS)
                  + f"  ({secs:.1f} s/video)", flush=True)
    return pd.DataFrame(raw), pd.DataFrame(lines), videos


def ranking(summary, by: str = "drift") -> list[str]:
    """Row names from best to worst by one metric (lower drift is better; higher otherwise)."""
    s = summary.sort_values(f"{by}_mean", ascending=(by == "drift"))
    return list(s["row"])


def agreement(summary) -> str:
    """Says, from the numbers, whether our drift ranking agrees with the paper's Table 2 (its
    top two rows on top, repeating image-to-video at the bottom)."""
    order = ranking(summary, "drift")
    present = [r for r in PAPER_TOP if r in order]
    lines = [f"ranking by drift (best first): {', '.join(order)}"]
    if present:
        top = order[:len(present)]
        ok = set(top) == set(present)
        lines.append(f"paper's top rows ({', '.join(present)}) {'are' if ok else 'are not'} our top {len(present)}"
                     + ("" if ok else f" (ours: {', '.join(top)})"))
    if PAPER_BOTTOM in order:
        last = order[-1] == PAPER_BOTTOM
        lines.append(f"{PAPER_BOTTOM} {'is' if last else 'is not'} last"
                     + ("" if last else f" (place {order.index(PAPER_BOTTOM) + 1} of {len(order)}; last: {order[-1]})"))
    return "\n".join(lines)


def plot_table2(summary, metrics=METRICS):
    """One panel per metric: a horizontal bar per row with its 95% interval of the mean."""
    import matplotlib.pyplot as plt

    n = len(metrics)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n + 1.5, 0.42 * len(summary) + 1.6), sharey=True)
    axes = np.atleast_1d(axes)
    y = np.arange(len(summary))[::-1]
    for ax, m in zip(axes, metrics):
        colours = ["#c0392b" if r in PAPER_TOP else "#7f8c8d" if r == PAPER_BOTTOM else "#2c7fb8"
                   for r in summary["row"]]
        ax.barh(y, summary[f"{m}_mean"], xerr=summary[f"{m}_ci95"], color=colours, alpha=0.85,
                error_kw={"elinewidth": 1, "capsize": 2})
        ax.set_title(LABELS[m], fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(summary["row"], fontsize=9)
    fig.suptitle("Toy Table 2: mean over held-out worlds, bars = 95% interval of the mean "
                 "(red: the paper's best rows, grey: its worst)", fontsize=10)
    fig.tight_layout()
    return fig


def main(argv=None) -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .models.tiny import load_tiny

    p = argparse.ArgumentParser(description="Toy Table 2: the paper's anti-drifting alternatives, measured.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="full")
    p.add_argument("--out", default="build")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    cfg = PRESETS[a.preset]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    raw, summary, _ = run(load_tiny(a.checkpoint, device=a.device), cfg["rows"], cfg["seeds"], cfg["frames"],
                          cfg["steps"])
    raw.to_csv(out / "table2_raw.csv", index=False)
    summary.to_csv(out / "table2.csv", index=False)
    plot_table2(summary).savefig(out / "table2.png", dpi=110, bbox_inches="tight")
    cols = ["row"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "ci95")]
    print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(agreement(summary))
    print(f"wrote {out / 'table2.csv'}, {out / 'table2_raw.csv'}, {out / 'table2.png'} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
