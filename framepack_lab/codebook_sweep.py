"""The ``+D`` trade-off: drift and memory against the codebook size K.

Discrete history (:mod:`framepack_lab.discrete`) snaps every history latent pixel to the nearest
of K centroids before packing. The paper's NeurIPS version describes the trade-off: with K = 1
every history frame becomes one flat colour, so nothing can drift, but nothing is remembered
either; as K grows the snapping changes less and less, until it is a no-op. This module measures
both ends with the embedded model, for every K the checkpoint ships a codebook for:

* **drift, presence, motion**: vanilla with ``VANILLA + "+D{K}"`` over held-out worlds, scored as
  the toy Table 2 scores its rows (:func:`framepack_lab.table2.run` with one
  :class:`~framepack_lab.table2.Row` per K), beside the same schedule with no ``+D``;
* **memory**: recall of the forgetting probe (:func:`framepack_lab.forgetting.run_probe`) at one
  hidden duration, with the deep packed history of :data:`PROBE_SCHEDULE` plus ``+D{K}``.

The videos use the history noise of Table 2's vanilla row (:data:`HISTORY_NOISE`, so the ``no +D``
line is that row on the same worlds); the probe runs as :mod:`~framepack_lab.forgetting` runs it
(the backend's default history noise, so the ``no +D`` recall is the forgetting curve's deep
schedule at :data:`HIDDEN_FRAMES`). Within each measurement the codebook is the only thing that
changes from line to line::

    table, videos, probes = sweep(load_tiny(), n_seeds=8)
    plot_sweep(table)
"""

from __future__ import annotations

import math

from . import forgetting, table2, world
from .forgetting import PROBE_SCHEDULES, recall_interval, run_probe
from .table2 import VANILLA, Row

NO_D = "no +D"  # the reference line: the same schedule without discrete history
HISTORY_NOISE = next(r for r in table2.ROWS if r.name == "vanilla").options["history_noise"]
PROBE_SCHEDULE = next(s for label, s in PROBE_SCHEDULES.items() if label.startswith("deep"))
HIDDEN_FRAMES = 0  # the probe's shortest hiding (one frame): the one the shipped model recalls at all without +D
COLUMNS = ("drift", "presence", "motion")  # Table 2 metrics kept in the sweep's table
PRESETS = {
    "smoke": {"n_seeds": 2, "n_frames": 13, "steps": 3, "probe_worlds": 2},
    "full": {"n_seeds": 8, "n_frames": 64, "steps": 20, "probe_worlds": 8},
}


def sweep_ks(backend, ks=None) -> list[int]:
    """The codebook sizes to sweep: ``ks`` (each checked against the backend's codebooks), or every
    K the backend carries. ``ValueError`` for a backend without codebooks or a K it lacks."""
    from .discrete import check_k

    available = sorted(getattr(backend, "codebooks", None) or {})
    if not available:
        check_k(0, available)  # raises: this checkpoint has no codebook (what to do)
    if ks is None:
        return available
    ks = list(ks)
    if not ks:
        raise ValueError(f"give at least one codebook size K to sweep; this checkpoint has K in {available}")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int):
            raise ValueError(f"a codebook size K is a whole number, got {k!r}")
        check_k(k, available)
    return sorted(set(ks))


def sweep_rows(ks) -> list[Row]:
    """One Table 2 row per K (``VANILLA + "+D{K}"``) and the ``no +D`` reference, last."""
    opts = {"history_noise": HISTORY_NOISE}
    rows = [Row(f"+D{k}", "vanilla", f"{VANILLA}+D{k}",
                f"vanilla, history snapped to a K={k} codebook before packing", dict(opts)) for k in ks]
    rows.append(Row(NO_D, "vanilla", VANILLA, "vanilla, the same schedule without discrete history", dict(opts)))
    return rows


def sweep(backend, ks=None, n_seeds: int = 8, n_frames: int = 64, steps: int = 20,
          hidden_frames: int = HIDDEN_FRAMES, probe_worlds: int = 8, progress: bool = True):
    """Drift, presence, motion and probe recall for each K and without ``+D``.

    Args:
        backend: a backend with codebooks (``backend.codebooks`` ``{K: (K, C)}``).
        ks: codebook sizes (default: every one the backend has); checked before any work.
        n_seeds, n_frames, steps: held-out worlds (Table 2's), video length and sampler steps.
        hidden_frames, probe_worlds: the forgetting probe's hidden duration and number of worlds.

    Returns:
        ``(table, videos, probes)``: ``table`` a DataFrame with one line per K (ascending) and a
        last line for ``no +D`` (``K`` NaN): ``label``, ``K``, ``{metric}_mean`` and ``_ci95`` for
        :data:`COLUMNS`, ``recall``, ``recall_lo95``, ``recall_hi95``, ``seconds_per_video``;
        ``videos`` ``{label: [(T, H, W, 3)] per world}``; ``probes`` ``{label: ProbeRun}``.
    """
    import pandas as pd

    ks = sweep_ks(backend, ks)
    for name, v in (("n_seeds", n_seeds), ("n_frames", n_frames), ("steps", steps), ("probe_worlds", probe_worlds)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
    for s in list(world.HELDOUT_SEEDS)[forgetting.PROBE_SEED_OFFSET:forgetting.PROBE_SEED_OFFSET + probe_worlds]:
        world.probe_world(s, hidden_frames)  # refuses a duration a probe world cannot hide for, before any work
    rows = sweep_rows(ks)
    _, summary, videos = table2.run(backend, rows, n_seeds, n_frames, steps, progress=progress, keep_videos=True)
    probes, lines = {}, []
    for row, k in zip(rows, [*ks, None]):
        probe = run_probe(backend, PROBE_SCHEDULE + ("" if k is None else f"+D{k}"), hidden_frames, probe_worlds,
                          steps)
        probes[row.name] = probe
        s = summary.loc[summary["row"] == row.name].iloc[0]
        lo, hi = recall_interval(probe.recall_per_world)
        lines.append({"label": row.name, "K": math.nan if k is None else k,
                      **{f"{m}_{x}": float(s[f"{m}_{x}"]) for m in COLUMNS for x in ("mean", "ci95")},
                      "recall": probe.recall, "recall_lo95": lo, "recall_hi95": hi,
                      "seconds_per_video": float(s["seconds_per_video"])})
        if progress:
            print(f"  {row.name:8s} probe recall {probe.recall:.2f} (hidden {hidden_frames} frames, "
                  f"{probe_worlds} worlds, {probe.seconds:.0f} s)", flush=True)
    return pd.DataFrame(lines), videos, probes


def plot_sweep(table, metrics=("drift", "recall"), axes=None):
    """One panel per metric against K (log x axis): a line over the K rows with its 95% interval,
    and the ``no +D`` line as a dashed horizontal reference. Returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    unknown = [m for m in metrics if m != "recall" and m not in COLUMNS]
    if unknown:
        raise ValueError(f"plot_sweep draws 'recall' or {list(COLUMNS)}, got {unknown}")
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4))
    axes = np.atleast_1d(axes)
    ks = table[table["label"] != NO_D]
    ref = table[table["label"] == NO_D]
    titles = {"drift": "drift (start-end contrast, lower = less drift)", "recall": "probe recall (memory)",
              "presence": "sprites present (all frames)", "motion": "dynamic (path vs world's)"}
    for ax, m in zip(axes, metrics):
        if m == "recall":
            y, lo, hi = ks["recall"], ks["recall_lo95"], ks["recall_hi95"]
        else:
            y = ks[f"{m}_mean"]
            lo, hi = y - ks[f"{m}_ci95"], y + ks[f"{m}_ci95"]
            if m == "presence":  # a fraction: its interval stops at 0 and 1
                lo, hi = lo.clip(0, 1), hi.clip(0, 1)
        line, = ax.plot(ks["K"], y, "o-", label="vanilla +D{K}")
        ax.fill_between(ks["K"], lo, hi, color=line.get_color(), alpha=0.15)
        if len(ref):
            r = float(ref[m if m == "recall" else f"{m}_mean"].iloc[0])
            ax.axhline(r, color="#555555", ls="--", lw=1.2, label=NO_D)
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(ks["K"]))
        ax.set_xticklabels([str(int(k)) for k in ks["K"]])
        ax.set_xlabel("codebook size K")
        ax.set_title(titles[m], fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[0].figure.suptitle("The +D trade-off (the paper: K = 1 removes drift and memory alike, a large K is a "
                            "no-op); band: 95% interval", fontsize=10)
    axes[0].figure.tight_layout()
    return axes[0].figure


def findings(table) -> list[str]:
    """Sentences about the sweep read from its numbers: where K = 1 and the largest K sit against
    the ``no +D`` reference for drift, recall and presence (the paper: K = 1 removes drift and
    memory alike, large K is a no-op)."""
    ref = table[table["label"] == NO_D].iloc[0]
    ks = table[table["label"] != NO_D].sort_values("K")
    lo, hi = ks.iloc[0], ks.iloc[-1]
    out = []
    for m, what in (("drift_mean", "drift"), ("recall", "probe recall")):
        out.append(f"{what}: K={int(lo['K'])} {lo[m]:.3f}, K={int(hi['K'])} {hi[m]:.3f}, no +D {ref[m]:.3f}")
    less_drift = lo["drift_mean"] < ref["drift_mean"]
    forgets = lo["recall"] < ref["recall"]
    drift_overlap = abs(lo["drift_mean"] - ref["drift_mean"]) <= lo["drift_ci95"] + ref["drift_ci95"]
    recall_overlap = lo["recall_hi95"] >= ref["recall_lo95"] and ref["recall_hi95"] >= lo["recall_lo95"]
    overlaps = [what for what, o in (("drift", drift_overlap), ("recall", recall_overlap)) if o]
    out.append(f"K={int(lo['K'])} {'drifts less than' if less_drift else 'does not drift less than'} no +D "
               f"and recalls {'less' if forgets else 'no less'} "
               f"({'as the paper says' if less_drift and forgets else 'not what the paper says'})"
               + (f"; the {' and '.join(overlaps)} intervals overlap, so there are too few worlds to be sure"
                  if overlaps else ""))
    gap = abs(hi["drift_mean"] - ref["drift_mean"])
    within = gap <= hi["drift_ci95"] + ref["drift_ci95"]
    out.append(f"K={int(hi['K'])} is {'within' if within else 'outside'} the no +D drift's uncertainty "
               f"(gap {gap:.3f}, summed 95% half-widths {hi['drift_ci95'] + ref['drift_ci95']:.3f}): "
               f"{'a no-op, as the paper says' if within else 'not yet a no-op at this K'}")
    out.append(f"sprites present over all frames: K={int(lo['K'])} {lo['presence_mean']:.2f}, "
               f"K={int(hi['K'])} {hi['presence_mean']:.2f}, no +D {ref['presence_mean']:.2f} (a history snapped "
               "to too few colours loses the sprites themselves)")
    return out


def main(argv=None) -> None:  # pragma: no cover - a thin CLI over sweep()
    import argparse
    import os
    from pathlib import Path

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .models.tiny import load_tiny

    p = argparse.ArgumentParser(description="The +D trade-off: drift and probe recall against the codebook size K.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="full")
    p.add_argument("--out", default="build")
    p.add_argument("--checkpoint", default=None)
    a = p.parse_args(argv)
    table, _, _ = sweep(load_tiny(a.checkpoint), **PRESETS[a.preset])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "codebook_sweep.csv", index=False)
    plot_sweep(table).savefig(out / "codebook_sweep.png", dpi=110, bbox_inches="tight")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\n".join(findings(table)))


if __name__ == "__main__":  # pragma: no cover
    main()
