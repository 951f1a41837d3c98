"""Does the embedded model hold a whole video? ``python -m framepack_lab.evaluate``.

Generates videos from the first frames of held-out worlds (``world.HELDOUT_SEEDS``, never used
in training) with each sampling order and reports, per order, over **every frame**:

* **presence**: fraction of (first-frame sprite, frame) pairs where the sprite is still found
  (by colour, :func:`framepack_lab.world.find_sprites`); target >= 0.9;
* **worst**: the same fraction at the video's worst frame; target >= 0.8;
* **size kept**: fraction of sprites found at the last frame whose pixel count is within
  0.5-2x of the first frame's (no melting, no smearing); target >= 0.8;
* **motion**: sprite path length over the video relative to the world's own path over the same
  frames; target 0.5-1.5;
* **reach**: how far the sprites found in the first and last frames got from where they started,
  over the world's own distance for the same sprites (a path can be long while the video ends
  where it began: the inverted order generates the end first, from the first frame alone);
  reported, no target;
* **invented**: fraction of frames that show a sprite of a colour absent from the first frame
  (a hallucinated sprite, which presence cannot see); reported, no target;
* **survival@16**: fraction of first-frame sprites found at frame 16 (the old headline figure);
* **drift**: the paper's start-end contrast (Eq. 4) of the colour-statistics distance to frame 0;
* **seconds** per video (the batch's time divided by its size).

The report's last row scores the worlds' own videos the same way (:func:`truth_figures`): the
ceiling of each figure for a perfect model, which is not 1 for every figure. Under each order's
row, the 90% bootstrap interval over worlds of each figure (:mod:`framepack_lab.intervals`): 16
worlds are few, and a miss whose interval reaches the target may be the sample's, not the model's.

Options: ``--frames 256`` for long videos, ``--sweep`` for drift and presence against the history
noise level, ``--compare DIR`` to time another checkpoint side by side, ``--plot FILE`` for a PNG
of filmstrips (every order beside the world's own video) to look at before believing a number,
``--first-world 16`` for a second, disjoint sample of held-out worlds (16 worlds are few),
``--inverted-gap true`` (or a cap in sections, e.g. ``6``) to run the inverted order at another RoPE
gap than the official loop's and ``--gap-sweep`` for its figures at :data:`INVERTED_GAP_SWEEP`.
All worlds of one order run as one batch (:func:`framepack_lab.generate.generate_many`), each
with its own seed, so a figure is the same whatever the batch size.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from . import metrics, world
from .generate import DEFAULT_ORDER, generate_many
from .intervals import INTERVAL_LEVEL, bootstrap
from .plan import DEFAULT_INVERTED_GAP, ORDERS, check_gap, make_plan

TARGETS = {"presence": 0.9, "worst": 0.8, "size_kept": 0.8, "motion": (0.5, 1.5)}
SIZE_RANGE = (0.5, 2.0)   # last/first pixel count that counts as "size kept"
PATH_STRIDE = 4           # frames between centroid samples of a path
HISTORY_NOISE_SWEEP = (0.0, 0.1, 0.3, 0.5)
INVERTED_GAP_SWEEP = ("official", 6, "true")  # the official cap, a cap at 6 sections, every section at its true time
INTERVAL_FIGURES = ("presence", "worst", "size_kept", "motion", "reach", "invented", "drift")  # bootstrapped over worlds


def heldout_seeds(n: int, offset: int = 0) -> list[int]:
    """The first ``n`` held-out world seeds after ``offset`` (the test suites use offsets < 100).
    ``ValueError`` when fewer than ``n`` held-out worlds follow ``offset``."""
    last = len(world.HELDOUT_SEEDS) - n
    if not 0 <= offset <= last:
        raise ValueError(f"the first held-out world must be 0..{last} so that {n} held-out worlds follow it, got {offset}")
    return list(world.HELDOUT_SEEDS)[offset:offset + n]


def world_parts(video, seed: int, probe_frame: int = 16) -> dict:
    """One world's share of :func:`score_videos`' figures, before they are pooled over worlds.

    ``video`` ``(T, H, W, 3)`` generated from world ``seed``'s first frame. Returns the sums the
    pooled figures are ratios of (sprites found per frame ``(T,)`` and sprites in frame 0, size
    ratios, generated and true path lengths and reaches), the world's drift and invented fraction,
    and its survival at ``probe_frame``. :func:`pool_parts` turns a list of them into the figures,
    so a bootstrap over worlds (:func:`framepack_lab.intervals.bootstrap`) resamples these."""
    tracks = metrics.sprite_tracks(video)
    part = {"drift": metrics.start_end_contrast(metrics.colour_drift(video)),
            "invented": float(metrics.invented_sprites(video, tracks).mean()),
            "n": len(tracks[0]), "found": None, "sizes": [], "gen_len": 0.0, "true_len": 0.0,
            "gen_reach": 0.0, "true_reach": 0.0, "survival": None}
    if not tracks[0]:
        return part
    presence = metrics.sprite_presence(video, tracks)
    part["found"] = presence * part["n"]
    part["sizes"] = list(metrics.size_ratios(video, tracks).values())
    paths = metrics.path_lengths(video, PATH_STRIDE, tracks)
    w = world.make_world(seed)
    truth = metrics.true_path_lengths(w, paths, PATH_STRIDE)
    part["gen_len"] = float(sum(paths[c][0] for c in truth))
    part["true_len"] = float(sum(truth.values()))
    reach = metrics.sprite_displacements(video, len(video) - 1, tracks)
    own_reach = metrics.true_displacements(w, len(video) - 1)
    for c, d in reach.items():  # in the order of the first frame's sprites
        if c in own_reach:
            part["gen_reach"] += d
            part["true_reach"] += own_reach[c]
    if len(video) > probe_frame:
        part["survival"] = float(presence[probe_frame])
    return part


def pool_parts(parts) -> dict[str, float]:
    """:func:`score_videos`' figures from the worlds' :func:`world_parts`: presence and the worst
    frame pool the sprites found per frame over worlds, size kept pools the sprites, motion and
    reach are ratios of summed lengths, drift, invented and survival are means over worlds."""
    drift = [p["drift"] for p in parts]
    invented = [p["invented"] for p in parts]
    seen = [p for p in parts if p["found"] is not None]
    if not seen:  # no sprite in any first frame: only the drift is defined
        nan = float("nan")
        return {"presence": nan, "worst": nan, "size_kept": nan, "motion": nan, "reach": nan, "survival": nan,
                "invented": _mean(invented), "drift": float(np.mean(drift)), "drift_sd": float(np.std(drift)),
                "presence_curve": np.array([])}
    curve = np.sum([p["found"] for p in seen], axis=0) / sum(p["n"] for p in seen)
    sizes = np.asarray([r for p in seen for r in p["sizes"]])
    true_len, true_reach = sum(p["true_len"] for p in seen), sum(p["true_reach"] for p in seen)
    return {
        "presence": float(curve.mean()), "worst": float(curve.min()),
        "size_kept": float(np.mean((sizes >= SIZE_RANGE[0]) & (sizes <= SIZE_RANGE[1]))) if len(sizes) else 0.0,
        "motion": sum(p["gen_len"] for p in seen) / true_len if true_len > 0 else float("nan"),
        "reach": sum(p["gen_reach"] for p in seen) / true_reach if true_reach > 0 else float("nan"),
        "survival": _mean([p["survival"] for p in seen if p["survival"] is not None]),
        "invented": _mean(invented), "drift": float(np.mean(drift)), "drift_sd": float(np.std(drift)),
        "presence_curve": curve,
    }


def paired_differences(parts_a, parts_b, names=INTERVAL_FIGURES) -> dict[str, tuple[float, float]]:
    """90% bootstrap intervals of ``figure(a) - figure(b)`` for two settings measured on the same
    worlds (``parts_a[i]`` and ``parts_b[i]``: :func:`world_parts` of world ``i`` under each).

    The worlds are redrawn in pairs, so what two settings share (a world that is hard for both)
    cancels: a much narrower interval than comparing two unpaired intervals. An interval that
    excludes 0 says the settings differ on worlds like these; it cannot see a training seed."""
    if len(parts_a) != len(parts_b):
        raise ValueError(f"paired differences need the same worlds under both settings, got {len(parts_a)} and "
                         f"{len(parts_b)} worlds")

    def difference(pairs):
        a, b = pool_parts([p for p, _ in pairs]), pool_parts([q for _, q in pairs])
        return {n: a[n] - b[n] for n in names}

    return bootstrap(list(zip(parts_a, parts_b)), difference, names)


def score_videos(videos, seeds, probe_frame: int = 16) -> dict[str, float]:
    """The figures of the module docstring for ``videos`` ``[(T, H, W, 3)]`` of worlds ``seeds``.

    Returns ``{"presence", "worst", "size_kept", "motion", "reach", "survival", "invented", "drift",
    "drift_sd", "presence_curve"}``; ``presence_curve`` is the per-frame presence ``(T,)`` over all worlds.
    """
    return pool_parts([world_parts(v, s, probe_frame) for v, s in zip(videos, seeds)])


def truth_figures(n_seeds: int = 16, n_frames: int = 64, probe_frame: int = 16, first_world: int = 0) -> dict[str, float]:
    """The same figures for the worlds' own videos: what the measuring stick gives a perfect model.

    Not every figure reaches 1 on the truth: a sprite that starts behind another or at the edge of
    the frame changes its visible pixel count, so ``size_kept`` of the truth is below 1 (0.87 on the
    first 16 held-out worlds at 64 frames), and the world's own colours drift a little (0.04).
    """
    seeds = heldout_seeds(n_seeds, first_world)
    return {**score_videos([world.video(s, n_frames) for s in seeds], seeds, probe_frame), "seconds": float("nan")}


def run_order(backend, order: str, seeds, n_frames: int = 64, steps: int = 20, seed: int = 0,
              inverted_gap: "str | int" = DEFAULT_INVERTED_GAP, **kw):
    """Generate one batch of videos (one per world seed) with ``order``; returns (videos, seconds
    per video). ``inverted_gap`` is the inverted order's RoPE gap (:func:`framepack_lab.plan.inverted_padding`;
    the other orders have none). ``kw`` goes to :func:`framepack_lab.generate.generate_many`
    (``schedule``, ``history_noise`` ...)."""
    gap = inverted_gap if order == "inverted_anti_drifting" else None  # make_plan checks it
    plan = make_plan(order, n_frames, kw.pop("schedule", None), gap=gap)
    firsts = [world.video(s, 1)[0] for s in seeds]
    t0 = time.perf_counter()
    results = generate_many(backend, firsts, plan=plan, steps=steps, seeds=[seed + s for s in seeds], **kw)
    return [r.frames for r in results], (time.perf_counter() - t0) / len(seeds)


def evaluate(backend, orders=ORDERS, n_seeds: int = 16, n_frames: int = 64, steps: int = 20,
             probe_frame: int = 16, seed: int = 0, progress: bool = True, keep_videos: bool = False,
             first_world: int = 0, inverted_gap: "str | int" = DEFAULT_INVERTED_GAP, intervals: bool = True,
             **kw) -> dict[str, dict]:
    """Per-order figures over ``n_seeds`` held-out worlds (see the module docstring).

    ``kw`` goes to :func:`framepack_lab.generate.generate_many` (``history_noise``,
    ``history_guidance``). With ``keep_videos`` each order's entry also holds its ``videos``.
    ``probe_frame`` is the frame of the survival figure (``survival``, the old headline).
    ``first_world`` skips that many held-out worlds: a second sample of worlds for the same figures.
    ``inverted_gap``: the inverted order's RoPE gap between anchor and section (default the official loop's).
    With ``intervals`` (and more than one world) each order's entry also holds ``intervals``:
    ``{figure: (low, high)}``, the 90% bootstrap interval over worlds of each of
    :data:`INTERVAL_FIGURES` (:func:`framepack_lab.intervals.bootstrap`): how far another sample of
    as many worlds could land.
    """
    check_gap(inverted_gap)
    seeds = heldout_seeds(n_seeds, first_world)
    out = {}
    for order in orders:
        videos, secs = run_order(backend, order, seeds, n_frames, steps, seed, inverted_gap, **kw)
        parts = [world_parts(v, s, probe_frame) for v, s in zip(videos, seeds)]
        out[order] = {**pool_parts(parts), "seconds": secs}
        if intervals and len(seeds) > 1:
            out[order]["intervals"] = bootstrap(parts, pool_parts, INTERVAL_FIGURES)
        if keep_videos:
            out[order]["videos"] = videos
        if progress:
            print(f"  {order:24s} " + "  ".join(f"{k}={v:.3f}" for k, v in out[order].items()
                                                 if isinstance(v, float)), flush=True)
    return out


def _mean(values) -> float:
    """Mean, or NaN for no values (e.g. no sprite found in any first frame)."""
    return float(np.mean(values)) if len(values) else float("nan")


def _ok(name: str, value: float) -> str:
    t = TARGETS.get(name)
    if t is None or math.isnan(value):
        return " "
    good = t[0] <= value <= t[1] if isinstance(t, tuple) else value >= t
    return " " if good else "!"


def _interval_cell(iv) -> str:
    """``low-high`` in a report column, blank where a figure has no interval."""
    if iv is None or math.isnan(iv[0]):
        return f"{'':10s}"
    digits = 3 if max(abs(iv[0]), abs(iv[1])) < 0.1 else 2

    def short(x: float) -> str:  # 0.046 -> .046, so that two fit a column
        text = f"{x:.{digits}f}"
        return text.replace("0.", ".", 1) if text.lstrip("-").startswith("0.") else text

    return f"{short(iv[0])}-{short(iv[1])}".rjust(10)


def format_report(res: dict[str, dict], title: str = "", truth: dict | None = None) -> str:
    """A plain-text table of :func:`evaluate`'s result; ``!`` marks a figure that misses its target.
    ``truth`` (:func:`truth_figures`) adds a last row: the same figures for the worlds' own videos."""
    cols = ["presence", "worst", "size_kept", "motion", "reach", "invented", "survival", "drift", "seconds"]
    heads = ["presence", "worst", "size kept", "motion", "reach", "invented", "surv@16", "drift", "s/video"]
    lines = [title] if title else []
    lines.append(f"{'order':24s} " + " ".join(f"{h:>10s}" for h in heads))

    def cell(c: str, value: float, judged: bool) -> str:
        return ("{:9.4f}" if c == "drift" else "{:9.2f}").format(value) + (_ok(c, value) if judged else " ")

    for order, r in res.items():
        mark = " (default)" if order == DEFAULT_ORDER else ""
        lines.append(f"{order:24s} " + " ".join(cell(c, r[c], True) for c in cols) + mark)
        if "intervals" in r:
            lines.append(f"{'':24s} " + " ".join(_interval_cell(r["intervals"].get(c)) for c in cols))
    if truth is not None:  # the ceiling, not judged against the targets; it has no time
        lines.append(f"{'(the worlds own videos)':24s} " + " ".join(cell(c, truth[c], False) for c in cols[:-1])
                     + f" {'-':>9s}")
    targets = ", ".join(f"{k} {'%.1f-%.1f' % v if isinstance(v, tuple) else '>= %.1f' % v}" for k, v in TARGETS.items())
    lines.append(f"targets: {targets}; ! = missed")
    if any("intervals" in r for r in res.values()):
        lines.append(f"under each order: the {INTERVAL_LEVEL:.0%} bootstrap interval over worlds (how far another sample "
                     "of as many worlds could land; it cannot see the training seed)")
    if "vanilla" in res and "inverted_anti_drifting" in res:
        ratio = res["vanilla"]["drift"] / max(res["inverted_anti_drifting"]["drift"], 1e-9)
        lines.append(f"drift ratio vanilla / inverted anti-drifting: {ratio:.2f} (a finding, not a target)")
    return "\n".join(lines)


def history_noise_sweep(backend, levels=HISTORY_NOISE_SWEEP, order: str = "vanilla", n_seeds: int = 16,
                        n_frames: int = 64, steps: int = 20, progress: bool = True, first_world: int = 0) -> dict[float, dict]:
    """Figures of one order at each history-noise level ``sigma_test``: ``{level: figures}``."""
    out = {}
    for level in levels:
        out[level] = evaluate(backend, [order], n_seeds, n_frames, steps, progress=False,
                              first_world=first_world, history_noise=level)[order]
        if progress:
            r = out[level]
            print(f"  {order} history_noise={level:.2f}: presence {r['presence']:.3f} worst {r['worst']:.3f} "
                  f"drift {r['drift']:.4f}", flush=True)
    return out


def inverted_gap_sweep(backend, gaps=INVERTED_GAP_SWEEP, n_seeds: int = 16, n_frames: int = 64, steps: int = 20,
                       progress: bool = True, first_world: int = 0, keep_videos: bool = False) -> dict:
    """The inverted order's figures at each RoPE gap between its anchor and its sections:
    ``{gap: figures}`` (gaps as in :func:`framepack_lab.plan.inverted_padding`; with
    ``keep_videos`` each entry also holds its ``videos``).

    The official loop caps the gap at a few sections, so a model that learned true distances is
    told that the video's end lies only that far from the first frame: motion and reach follow
    the gap, and so can presence and invented sprites (a far end is harder to draw)."""
    for g in gaps:
        check_gap(g)
    out = {}
    for g in gaps:
        out[g] = evaluate(backend, ["inverted_anti_drifting"], n_seeds, n_frames, steps, progress=False,
                          keep_videos=keep_videos, first_world=first_world, inverted_gap=g)["inverted_anti_drifting"]
        if progress:
            r = out[g]
            print(f"  inverted gap={g}: presence {r['presence']:.3f} worst {r['worst']:.3f} size {r['size_kept']:.2f} "
                  f"motion {r['motion']:.2f} reach {r['reach']:.2f} invented {r['invented']:.2f}", flush=True)
    return out


def compare_speed(backends: dict, n_frames: int = 64, steps: int = 20, repeats: int = 3,
                  options: dict | None = None) -> dict[str, float]:
    """Median seconds of one ``n_frames`` video (default order) per entry of ``backends``
    (``{label: backend}``), timed side by side: the entries take turns, so a machine that slows
    down slows all of them alike. ``options[label]`` holds extra ``generate`` arguments
    (e.g. ``{"history_guidance": 1.5}``)."""
    options = options or {}
    first = world.video(heldout_seeds(1)[0], 1)[0]
    times = {name: [] for name in backends}
    for name, b in backends.items():  # warm-up
        generate_many(b, [first], n_frames=9, steps=1, **options.get(name, {}))
    for _ in range(repeats):
        for name, b in backends.items():
            t0 = time.perf_counter()
            generate_many(b, [first], n_frames=n_frames, steps=steps, **options.get(name, {}))
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def plot_filmstrips(res: dict[str, dict], seeds, path, n_worlds: int = 4, n_columns: int = 8) -> Path:
    """One PNG: for each of ``n_worlds`` worlds, the world's own video and every order's video,
    ``n_columns`` frames spread over the whole video. ``res`` from ``evaluate(keep_videos=True)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    orders = list(res)
    T = len(res[orders[0]]["videos"][0])
    cols = np.linspace(0, T - 1, n_columns).round().astype(int)
    rows = []
    for i, s in enumerate(seeds[:n_worlds]):
        truth = world.video(s, T)
        rows.append((f"world {s}: truth", truth))
        rows += [(f"{o}", res[o]["videos"][i]) for o in orders]
    fig, axes = plt.subplots(len(rows), 1, figsize=(n_columns * 1.1, len(rows) * 1.25))
    for ax, (label, v) in zip(np.atleast_1d(axes), rows):
        strip = np.concatenate([np.pad(v[c], ((1, 1), (1, 1), (0, 0)), constant_values=1.0) for c in cols], axis=1)
        ax.imshow(np.clip(strip, 0, 1), interpolation="nearest")
        ax.set_yticks([])
        ax.set_xticks([(j + 0.5) * 66 for j in range(len(cols))], [f"t={c}" for c in cols], fontsize=7)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("held-out worlds: truth, then each order (frames spread over the whole video)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv=None) -> None:
    from .models.tiny import load_tiny

    p = argparse.ArgumentParser(description="Evaluate the tiny FramePack on held-out worlds.")
    p.add_argument("--checkpoint", default=None, help="folder with model.safetensors (default: shipped)")
    p.add_argument("--seeds", type=int, default=16, help="held-out worlds (default 16)")
    p.add_argument("--first-world", type=int, default=0,
                   help="start at this held-out world (default 0; 16 gives a second, disjoint sample of 16)")
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--orders", nargs="*", default=list(ORDERS))
    p.add_argument("--history-noise", type=float, default=None, help="sigma_test (default: the backend's)")
    p.add_argument("--history-guidance", type=float, default=1.0)
    p.add_argument("--cache", type=float, default=None,
                   help="step-cache threshold (TeaCache's rule, e.g. 0.1 or 0.15; default: off)")
    p.add_argument("--sweep", action="store_true", help="also: vanilla at history noise 0, 0.1, 0.3, 0.5")
    p.add_argument("--inverted-gap", default=DEFAULT_INVERTED_GAP,
                   help="the inverted order's RoPE gap: official (default), true, or a cap in sections (e.g. 6)")
    p.add_argument("--gap-sweep", action="store_true",
                   help="also: the inverted order at gaps " + ", ".join(map(str, INVERTED_GAP_SWEEP)))
    p.add_argument("--compare", default=None, help="another checkpoint to time side by side")
    p.add_argument("--plot", default=None, help="write a PNG of filmstrips here")
    a = p.parse_args(argv)
    if a.seeds < 1 or a.frames < 2 or a.steps < 1:
        p.error("--seeds and --steps must be >= 1 and --frames >= 2")
    try:
        seeds = heldout_seeds(a.seeds, a.first_world)
    except ValueError as e:
        p.error(f"--first-world: {e}")
    gap = int(a.inverted_gap) if a.inverted_gap.isdigit() else a.inverted_gap
    try:
        check_gap(gap)
    except ValueError as e:
        p.error(f"--inverted-gap: {e}")
    backend = load_tiny(a.checkpoint)
    with world.default_trail(backend.trail):  # the worlds the checkpoint was trained on
        _report(backend, a, seeds, gap)


def _report(backend, a, seeds, gap) -> None:
    """``main``'s work once its arguments are checked and the checkpoint is loaded."""
    from .models.tiny import load_tiny

    if backend.trail:
        print("worlds drawn with motion trails, as the checkpoint was trained")
    kw = {"history_noise": a.history_noise, "history_guidance": a.history_guidance, "cache": a.cache}
    res = evaluate(backend, a.orders, a.seeds, a.frames, a.steps, keep_videos=bool(a.plot), first_world=a.first_world,
                   inverted_gap=gap, **kw)
    options = f", step cache {a.cache:g}" if a.cache else ""
    options += f", inverted gap {gap}" if gap != DEFAULT_INVERTED_GAP else ""
    worlds = f"held-out worlds {a.first_world}-{a.first_world + a.seeds - 1}" if a.first_world else f"{a.seeds} held-out worlds"
    print(format_report(res, f"{worlds}, {a.frames} frames, {a.steps} Euler steps{options}",
                        truth=truth_figures(a.seeds, a.frames, first_world=a.first_world)))
    if a.plot:
        print(f"filmstrips: {plot_filmstrips(res, seeds, a.plot)}")
    if a.sweep:
        sweep = history_noise_sweep(backend, n_seeds=a.seeds, n_frames=a.frames, steps=a.steps, first_world=a.first_world)
        print("vanilla by history noise: " + "; ".join(
            f"{k:.1f}: drift {v['drift']:.4f}, presence {v['presence']:.2f}" for k, v in sweep.items()))
    if a.gap_sweep:
        inverted_gap_sweep(backend, n_seeds=a.seeds, n_frames=a.frames, steps=a.steps, first_world=a.first_world)
    if a.compare:
        other = load_tiny(a.compare)
        t = compare_speed({"this": backend, "other": other})
        print(f"speed, {a.frames} frames: this {t['this']:.2f} s, other {t['other']:.2f} s, ratio {t['this'] / t['other']:.2f}")


def denoising_error(backend, order: str = "vanilla", schedule=None, n_worlds: int = 8, n_frames: int = 64,
                    noise_levels=(0.3, 0.6, 0.9), rope_mode: str = "average", rope_time_offset: bool = True,
                    seed: int = 0) -> float:
    """Mean squared x0 error of the model on held-out ground truth (teacher forcing).

    Every step of the plan is packed from the *true* latents of held-out worlds, noised at each
    of ``noise_levels``, and denoised in one model call; the error is averaged over steps, levels
    and worlds. Comparing RoPE alignments (``rope_mode``, ``rope_time_offset``: the arguments of
    :meth:`~framepack_lab.models.tiny.TinyBackend.rope_alignment`, restored afterwards) this way
    measures what misalignment costs without sampling noise.
    """
    import torch

    from .packing import pack
    from .plan import make_plan

    with backend.rope_alignment(mode=rope_mode, time_offset=rope_time_offset):
        seeds = list(world.HELDOUT_SEEDS)[:n_worlds]
        frames = world.batch(seeds, n_frames).permute(0, 1, 3, 4, 2)  # (B, T, H, W, 3)
        plan = make_plan(order, n_frames, schedule)
        latents = backend.encode(frames)
        if plan.total_frames > n_frames:
            latents = torch.cat([latents, latents[:, :, -1:].expand(-1, -1, plan.total_frames - n_frames, -1, -1)], 2)
        gen = torch.Generator().manual_seed(seed)
        errors = []
        for step in plan.steps:
            context = pack(latents, step, backend.kernels)
            x0 = latents[:, :, list(step.generated)]
            for level in noise_levels:
                sigma = torch.full((len(seeds),), float(level))
                eps = torch.randn(x0.shape, generator=gen)
                x_t = (1 - level) * x0 + level * eps
                errors.append(float(((backend.x0(x_t, sigma, context) - x0) ** 2).mean()))
        return float(np.mean(errors))



if __name__ == "__main__":
    main()
