"""The forgetting probe: does a sprite that was hidden come back as itself, and where it should?

FramePack's first claim is that packing fights *forgetting*: with the history compressed, a model
can keep far more past frames in its context for the same token budget, so it remembers what it
saw long ago. This probe measures it.

Each probe world (:func:`framepack_lab.world.probe_world`) has one sprite that moves right, passes
behind an occluder band for ``hidden_frames`` frames and comes out on the other side. The model
is given the *real* video up to just before the sprite re-emerges (teacher forcing through
:func:`~framepack_lab.generate.generate_many`'s ``prefix``), so the last frames it sees show no
sprite at all; it then generates the rest in the vanilla order with a packing schedule. Only a
schedule whose packed history still reaches back to frames where the sprite was visible can know
that a sprite is behind the band, and which one.

Per world, over the frames after the sprite is fully out again:

* **recall**: the sprite's colour is found (:func:`framepack_lab.world.find_sprites`) in at least
  half of them;
* **same size**: recalled, with a pixel count within 0.5-2x of the true sprite's;
* **right place**: recalled, with its centroid within :data:`PLACE_TOLERANCE` pixels of where the
  world's motion puts it;
* **impostors**: another palette colour appears (the model invents a sprite).

``python -m framepack_lab.forgetting`` prints recall against the hidden duration for
:data:`PROBE_SCHEDULES` and writes ``build/forgetting.csv`` and ``build/forgetting.png``.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import world
from .generate import generate_many
from .plan import make_plan
from .schedule import as_schedule

# How far back each schedule's packed history reaches (g4 sections; frames of history in brackets)
PROBE_SCHEDULES = {
    "deep (f16k4f4k2f2k1: 22 frames)": "td_f16k4f4k2f2k1_g4",
    "middle (f4k2f2k1: 6 frames)": "td_f4k2f2k1_g4",
    "shallow (f2k1: 2 frames)": "td_f2k1_g4",
}
HIDDEN_FRAMES = (0, 4, 8, 12, 16, 24)
PLACE_TOLERANCE = 8.0  # pixels
CHECK_FRAMES = 8       # frames scored after the sprite is fully out again
LEAD = 4               # the model takes over this many frames before the sprite starts to emerge
PRESETS = {
    "smoke": {"n_worlds": 2, "hidden": (0, 16), "steps": 4, "schedules": ("deep (f16k4f4k2f2k1: 22 frames)",
                                                                           "shallow (f2k1: 2 frames)")},
    "full": {"n_worlds": 16, "hidden": (0, 8, 16, 24), "steps": 20,
             "schedules": ("deep (f16k4f4k2f2k1: 22 frames)", "shallow (f2k1: 2 frames)")},
}
PROBE_SEED_OFFSET = 300  # held-out worlds 300.. (evaluate and the tests use lower offsets)


@dataclass
class ProbeRun:
    """One schedule at one hidden duration over a set of probe worlds."""

    schedule: str
    hidden_frames: int
    recall: float
    same_size: float
    right_place: float
    impostors: float
    recall_per_world: list
    videos: list          # generated videos (T, H, W, 3)
    truths: list          # the worlds' own videos
    takeover: int         # first generated frame
    check: tuple          # (first, last + 1) frames scored
    seconds: float


def probe_setup(seed: int, hidden_frames: int, section: int = 4):
    """``(world, truth video, takeover frame, (check_lo, check_hi))`` of one probe world.

    The takeover frame is the first frame of the vanilla plan's section that holds the frame
    :data:`LEAD` frames before the sprite starts to emerge; the prefix is every frame before it.
    """
    w, t_in, t_out = world.probe_world(seed, hidden_frames)
    s = w.sprites[0]
    out_full = t_out + math.ceil(2 * s.radius / s.vx)  # fully visible again from here
    n = out_full + CHECK_FRAMES
    start = max(t_out - LEAD, 2)
    takeover = 1 + ((start - 1) // section) * section  # vanilla sections generate 1..S, S+1..2S, ...
    return w, world.render(w, np.arange(n)), takeover, (out_full, n)


def score_probe(video: np.ndarray, w: world.World, check: tuple[int, int]) -> dict[str, float]:
    """Recall, size, place and impostors of one generated probe video (see the module docstring)."""
    s = w.sprites[0]
    frames = range(*check)
    truth_pos = world.sprite_positions(w, np.arange(*check))[:, 0]
    true_px = world.find_sprites(world.render(w, [check[0]])[0]).get(s.colour, (0, 0, 1))[2]
    hits, sizes, places, impostor = 0, [], [], 0
    for i, f in enumerate(frames):
        found = world.find_sprites(video[f])
        if s.colour in found:
            y, x, px = found[s.colour]
            hits += 1
            sizes.append(0.5 <= px / true_px <= 2.0)
            places.append(math.hypot(y - truth_pos[i, 0], x - truth_pos[i, 1]) <= PLACE_TOLERANCE)
        impostor += any(c != s.colour for c in found)
    recalled = hits >= len(frames) / 2
    return {"recall": float(recalled),
            "same_size": float(recalled and np.mean(sizes) >= 0.5),
            "right_place": float(recalled and np.mean(places) >= 0.5),
            "impostors": float(impostor >= len(frames) / 2)}


def run_probe(backend, schedule: str, hidden_frames: int, n_worlds: int = 16, steps: int = 20, seed: int = 0,
              **kw) -> ProbeRun:
    """Generate and score the probe worlds for one schedule and hidden duration (one batch).

    ``kw`` goes to :func:`framepack_lab.generate.generate_many` (``history_noise`` ...).
    """
    sched = as_schedule(schedule)
    seeds = list(world.HELDOUT_SEEDS)[PROBE_SEED_OFFSET:PROBE_SEED_OFFSET + n_worlds]
    setups = [probe_setup(s, hidden_frames, sched.generated) for s in seeds]
    takeover = setups[0][2]
    n = len(setups[0][1])
    plan = make_plan("vanilla", n, sched)
    t0 = time.perf_counter()
    results = generate_many(backend, [t[0] for _, t, _, _ in setups], plan=plan, steps=steps,
                            seeds=[seed + s for s in seeds], prefix=[t[1:takeover] for _, t, _, _ in setups], **kw)
    secs = time.perf_counter() - t0
    scores = [score_probe(r.frames, w, check) for r, (w, _, _, check) in zip(results, setups)]
    mean = {k: float(np.mean([sc[k] for sc in scores])) for k in scores[0]}
    return ProbeRun(sched.name, int(hidden_frames), mean["recall"], mean["same_size"], mean["right_place"],
                    mean["impostors"], [sc["recall"] for sc in scores], [r.frames for r in results],
                    [t for _, t, _, _ in setups], takeover, setups[0][3], secs)


def forgetting_curve(backend, schedules=None, hidden=HIDDEN_FRAMES, n_worlds: int = 16, steps: int = 20,
                     progress: bool = True, **kw) -> list[ProbeRun]:
    """:func:`run_probe` for every schedule label in ``schedules`` (keys of :data:`PROBE_SCHEDULES`,
    or schedule names) and every hidden duration."""
    runs = []
    for label in schedules or PROBE_SCHEDULES:
        name = PROBE_SCHEDULES.get(label, label)
        for d in hidden:
            r = run_probe(backend, name, d, n_worlds, steps, **kw)
            r.schedule = label
            runs.append(r)
            if progress:
                print(f"  {label:34s} hidden {d:3d}: recall {r.recall:.2f}  same size {r.same_size:.2f}  "
                      f"right place {r.right_place:.2f}  impostors {r.impostors:.2f}  ({r.seconds:.0f} s)", flush=True)
    return runs


def recall_interval(values, z: float = 1.96) -> tuple[float, float]:
    """A 95% Wilson interval for a recall rate from per-world 0/1 ``values``."""
    n = len(values)
    if n == 0:
        return (float("nan"), float("nan"))
    p = float(np.mean(values))
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def plot_curve(runs: list[ProbeRun], ax=None):
    """Recall against hidden frames, one line per schedule, with 95% Wilson intervals."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    for label in dict.fromkeys(r.schedule for r in runs):
        rs = [r for r in runs if r.schedule == label]
        d = [r.hidden_frames for r in rs]
        lo_hi = np.array([recall_interval(r.recall_per_world) for r in rs])
        line, = ax.plot(d, [r.recall for r in rs], "o-", label=label)
        ax.fill_between(d, lo_hi[:, 0], lo_hi[:, 1], color=line.get_color(), alpha=0.15)
    ax.set_xlabel("frames the sprite was hidden")
    ax.set_ylabel("recall (sprite back, same colour)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Forgetting: does the hidden sprite come back? (band: 95% interval)")
    ax.legend(loc="best", fontsize=8)
    return ax.figure


def plot_probe(run: ProbeRun, world_index: int = 0, every: int = 4, ax=None):
    """One probe world, truth (top) against generated (bottom), every ``every``-th frame from just
    before the sprite hides to the last scored frame. A red line marks the takeover (frames left of
    it are the real prefix), a green bar the frames that are scored. Returns the figure."""
    import matplotlib.pyplot as plt

    if not 0 <= world_index < len(run.videos):
        raise ValueError(f"world_index must be 0..{len(run.videos) - 1} (this run has {len(run.videos)} worlds), "
                         f"got {world_index!r}")
    truth, gen = np.asarray(run.truths[world_index]), np.asarray(run.videos[world_index])
    first = max(run.takeover - run.hidden_frames - LEAD - 2 * every, 0)  # about 2 strides before it hides
    frames = list(range(first, run.check[1], every))
    H, W = truth.shape[1:3]
    gap = np.ones((H // 8, W * len(frames), 3), dtype=np.float32)
    image = np.concatenate([np.concatenate([truth[f] for f in frames], axis=1), gap,
                            np.concatenate([gen[f] for f in frames], axis=1)], axis=0)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.75 * len(frames) + 1.0, 2.3))
    ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
    ax.set_xticks([W * (i + 0.5) for i in range(len(frames))], [str(f) for f in frames], fontsize=7)
    ax.set_yticks([H / 2, H * 1.5 + H // 8], ["truth", "generated"], fontsize=8)
    first_gen = next((i for i, f in enumerate(frames) if f >= run.takeover), len(frames))
    ax.axvline(W * first_gen - 0.5, color="#d62728", lw=2)
    scored = [i for i, f in enumerate(frames) if run.check[0] <= f < run.check[1]]
    if scored:
        ax.plot([W * scored[0], W * (scored[-1] + 1) - 1], [image.shape[0] + 2] * 2, color="#2ca02c", lw=4,
                clip_on=False)
    ax.set_xlabel(f"frame (red line: the model takes over at frame {run.takeover}; green: frames scored "
                  f"{run.check[0]}-{run.check[1] - 1})", fontsize=8)
    ax.set_title(f"{run.schedule}, hidden {run.hidden_frames} frames, world {world_index}: "
                 f"{'recalled' if run.recall_per_world[world_index] else 'not recalled'}", fontsize=9)
    return ax.figure


def write_csv(runs: list[ProbeRun], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["schedule", "hidden_frames", "recall", "recall_lo95", "recall_hi95", "same_size",
                     "right_place", "impostors", "worlds", "seconds"])
        for r in runs:
            lo, hi = recall_interval(r.recall_per_world)
            wr.writerow([r.schedule, r.hidden_frames, f"{r.recall:.3f}", f"{lo:.3f}", f"{hi:.3f}", f"{r.same_size:.3f}",
                         f"{r.right_place:.3f}", f"{r.impostors:.3f}", len(r.recall_per_world), f"{r.seconds:.1f}"])
    tmp.replace(path)
    return path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="The forgetting probe: recall of a hidden sprite against how long it "
                                            "was hidden, for deep and shallow packed histories.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="full")
    p.add_argument("--checkpoint", default=None, help="tiny checkpoint folder (default: the shipped one)")
    p.add_argument("--out", default="build", help="folder for forgetting.csv and forgetting.png")
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    from .models.tiny import load_tiny

    cfg = PRESETS[a.preset]
    backend = load_tiny(a.checkpoint, device=a.device)
    runs = forgetting_curve(backend, cfg["schedules"], cfg["hidden"], cfg["n_worlds"], cfg["steps"])
    out = Path(a.out)
    print(f"wrote {write_csv(runs, out / 'forgetting.csv')}")
    fig = plot_curve(runs)
    fig.savefig(out / "forgetting.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out / 'forgetting.png'}")


if __name__ == "__main__":
    main()
