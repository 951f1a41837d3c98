"""The figures a user asks about, measured on this machine and printed as one table.

    make bench                                  # or: python benchmarks/bench.py [options]
    python benchmarks/bench.py --repeats 5 --sections 8 32 --cost-steps 4
    python benchmarks/bench.py --smoke          # seconds, for tests: tiny sizes, same rows

Rows (a Markdown table, so it pastes into an issue or the README):

- ``import framepack_lab`` and the quickstart's imports (torch included), each in a fresh
  interpreter, median of ``--repeats``;
- time to first frame in the quickstart: a fresh process imports what the quickstart imports,
  calls ``load_tiny()``, picks the first frame and calls ``generate`` with the quickstart's
  settings; the clock stops when the first section lands (generate's callback) and is decoded;
- seconds to generate 64 frames of 64x64 with the shipped model at generate's default order and
  steps (median of ``--repeats`` warm runs in this process: ``generate_speed.time_generation``);
- peak memory: the peak resident set size (RSS, ``getrusage``) of that fresh quickstart process,
  which generates the whole video, and of this process after everything below;
- per-section time, packed (the default schedule) vs unpacked (every known frame at full
  resolution), when the video has reached 8 and 32 sections: one vanilla run of the largest count
  through ``framepack_lab.cost.section_costs``; the section at count N is the last section of an
  N-section video (its history is the same), timed at ``--cost-steps`` sampler steps, with the
  extra RSS it needed;
- step caching (``generate(cache=...)``, TeaCache's rule, :mod:`framepack_lab.step_cache`) at the
  official demo's thresholds (``--cache 0.1 0.15``): seconds per 64-frame video with the cache off
  and on (median of ``--repeats``, after a warm-up; the settings take turns, so a machine that
  slows down slows all of them alike), the speed-up in wall time and in this process's CPU time
  (steadier than wall time on a shared CPU; meaningless on a GPU), the share of model evaluations
  skipped, and what the cache does to the video: the change in sprite presence (over every frame),
  in drift (the start-end contrast) and in motion (path length relative to the world's), over
  ``--cache-worlds`` held-out worlds (``framepack_lab.evaluate``).

Timings depend on the machine and on what else runs on it; the header line says what ran them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate_speed import bench_first_frame, time_generation  # noqa: E402

# In a fresh interpreter: the bare package, then what the quickstart's first code cell imports.
IMPORT_CODE = """
import json, time
t0 = time.perf_counter()
import framepack_lab
t1 = time.perf_counter()
import framepack_lab.generate, framepack_lab.models.tiny, framepack_lab.world
t2 = time.perf_counter()
print(json.dumps({"package": t1 - t0, "quickstart": t2 - t1}))
"""


def _maxrss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def quickstart_child(n_frames: int, steps: int, order: str) -> dict[str, float]:
    """Runs in a fresh process: the quickstart from imports to a finished video, timed."""
    t0 = time.perf_counter()
    from framepack_lab.generate import generate
    from framepack_lab.models.tiny import load_tiny

    t_import = time.perf_counter() - t0
    backend = load_tiny()
    t_load = time.perf_counter() - t0
    first = bench_first_frame()
    landed: list[float] = []

    def on_section(event) -> None:
        if not landed:
            event.section_frames()  # decoded: a frame the reader can see
            landed.append(time.perf_counter() - t0)

    generate(backend, first, n_frames=n_frames, order=order, steps=steps, seed=0, callback=on_section)
    return {"import_s": t_import, "load_s": t_load, "first_frame_s": landed[0],
            "total_s": time.perf_counter() - t0, "peak_rss_mb": _maxrss_mb()}


def _run_python(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cache_rows(backend, first, n_frames: int, steps: int, order: str, thresholds=(0.1, 0.15), worlds: int = 4,
               repeats: int = 3) -> list[tuple[str, float, str, str]]:
    """Step caching at each threshold against the cache off: time, speed-up, evaluations skipped,
    and the change in presence and drift over ``worlds`` held-out worlds."""
    from framepack_lab.evaluate import heldout_seeds, run_order, score_videos
    from framepack_lab.generate import generate

    settings = [None, *thresholds]
    label = {t: "off" if t is None else f"{t:g}" for t in settings}
    for t in settings:  # warm-up
        generate(backend, first, n_frames=min(n_frames, 9), steps=min(steps, 2), cache=t)
    times = {t: [] for t in settings}
    cpu = {t: [] for t in settings}
    counts = {t: [0, 0] for t in thresholds}  # computed, skipped over the timed runs
    for r in range(repeats):
        for t in settings:  # in turns
            t0, c0 = time.perf_counter(), time.process_time()
            res = generate(backend, first, n_frames=n_frames, order=order, steps=steps, seed=r, cache=t)
            times[t].append(time.perf_counter() - t0)
            cpu[t].append(time.process_time() - c0)
            if t is not None:
                counts[t][0] += res.info["cache"]["computed"]
                counts[t][1] += res.info["cache"]["skipped"]
    seeds = heldout_seeds(worlds)
    scores = {t: score_videos(run_order(backend, order, seeds, n_frames, steps, cache=t)[0], seeds) for t in settings}
    how = f"shipped tiny model, {order}, {steps} steps; median of {repeats} warm runs, settings in turns"
    off, off_cpu = statistics.median(times[None]), statistics.median(cpu[None])
    rows = [(f"generate {n_frames} frames, step cache off", off, "s", how),
            ("presence, step cache off", scores[None]["presence"], "fraction",
             f"sprites of the first frame found, over all frames of {worlds} held-out worlds"),
            ("drift, step cache off", scores[None]["drift"], "contrast",
             f"start-end contrast of the colour distance to frame 0 (Eq. 4), {worlds} held-out worlds")]
    for t in thresholds:
        med, (computed, skipped) = statistics.median(times[t]), counts[t]
        rows += [(f"generate {n_frames} frames, step cache {label[t]}", med, "s", how),
                 (f"step cache {label[t]}: speed-up", off / med, "x", "wall seconds with the cache off / on"),
                 (f"step cache {label[t]}: speed-up, CPU time", off_cpu / statistics.median(cpu[t]), "x",
                  "this process's CPU seconds with the cache off / on (medians of the same runs)"),
                 (f"step cache {label[t]}: evaluations skipped", 100.0 * skipped / max(computed + skipped, 1), "%",
                  f"{skipped} of {computed + skipped} model evaluations of the timed runs skipped"),
                 (f"step cache {label[t]}: presence change", scores[t]["presence"] - scores[None]["presence"],
                  "fraction", f"presence with the cache minus without, {worlds} held-out worlds (same seeds)"),
                 (f"step cache {label[t]}: drift change", scores[t]["drift"] - scores[None]["drift"], "contrast",
                  f"drift with the cache minus without, {worlds} held-out worlds (same seeds)"),
                 (f"step cache {label[t]}: motion change", scores[t]["motion"] - scores[None]["motion"], "ratio",
                  f"sprite path length / the world's, with the cache minus without, {worlds} held-out worlds")]
    return rows


def run_bench(repeats: int = 3, n_frames: int = 64, steps: int | None = None, order: str | None = None,
              sections: tuple[int, ...] = (8, 32), cost_steps: int = 4, cache: tuple[float, ...] = (0.1, 0.15),
              cache_worlds: int = 4) -> list[tuple[str, float, str, str]]:
    """Measure everything; returns rows ``(figure, value, unit, how)``."""
    from framepack_lab.generate import DEFAULT_ORDER, generate

    steps = inspect.signature(generate).parameters["steps"].default if steps is None else steps
    order = order or DEFAULT_ORDER
    rows: list[tuple[str, float, str, str]] = []

    imports = [_run_python(["-c", IMPORT_CODE]) for _ in range(repeats)]
    rows.append(("import framepack_lab", 1e3 * statistics.median(i["package"] for i in imports), "ms",
                 f"fresh interpreter, median of {repeats}"))
    rows.append(("import the quickstart's modules (torch included)",
                 1e3 * statistics.median(i["quickstart"] for i in imports), "ms",
                 f"framepack_lab.generate, .models.tiny, .world; fresh interpreter, median of {repeats}"))

    qs = _run_python([__file__, "--quickstart-child", json.dumps([n_frames, steps, order])])
    rows.append(("time to first frame, quickstart", qs["first_frame_s"], "s",
                 f"fresh process: imports + load_tiny ({qs['load_s'] - qs['import_s']:.2f} s) + first section "
                 f"({order}, {steps} steps) landed and decoded"))

    from framepack_lab.models.tiny import load_tiny

    backend, first = load_tiny(), bench_first_frame()
    times = time_generation(backend, first, n_frames=n_frames, steps=steps, order=order, repeats=repeats)
    h, w = first.shape[:2]
    rows.append((f"generate {n_frames} frames of {h}x{w}", statistics.median(times), "s",
                 f"shipped tiny model, {order}, {steps} steps; median of {repeats} warm runs "
                 f"(cold, in the fresh process: {qs['total_s']:.1f} s incl. imports and load)"))
    rows.append(("peak memory, quickstart process", qs["peak_rss_mb"], "MB",
                 f"peak RSS of the fresh process that imported, loaded and generated {n_frames} frames"))
    if cache:
        rows += cache_rows(backend, first, n_frames, steps, order, tuple(cache), cache_worlds, repeats)

    from framepack_lab.cost import section_costs

    costs = section_costs(backend, first, max(sections), steps=cost_steps)
    pk, up = costs["packed"], costs["unpacked"]
    for n in sorted(sections):
        i = n - 1
        for c in (pk, up):
            rows.append((f"section time at {n} sections, {c.label}", 1e3 * c.seconds[i], "ms",
                         f"{c.tokens[i]} tokens, {c.history[i]} known frames; sampler steps: {cost_steps}"))
        rows.append((f"unpacked / packed at {n} sections", up.seconds[i] / pk.seconds[i], "x",
                     "Eq. 3: packed stays bounded, unpacked grows with the history"))
    n = max(sections)
    for c in (pk, up):
        rows.append((f"extra RSS of section {n}, {c.label}", c.peak_mb[n - 1], "MB",
                     "peak resident memory above the level before the section (sampled)"))
    rows.append(("peak memory, this bench process", _maxrss_mb(), "MB",
                 f"peak RSS after the {n_frames}-frame runs and the {n}-section unpacked run"))
    return rows


def format_table(rows: list[tuple[str, float, str, str]]) -> str:
    """A Markdown table: figure | value | unit | how it was measured."""
    def num(v: float) -> str:
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"

    body = [("figure", "value", "unit", "how"), *[(f, num(v), u, how) for f, v, u, how in rows]]
    widths = [max(len(r[k]) for r in body) for k in range(3)]
    lines = []
    for j, r in enumerate(body):
        lines.append("| " + " | ".join(c.ljust(wd) if k != 1 else c.rjust(wd) for k, (c, wd) in
                                        enumerate(zip(r[:3], widths))) + f" | {r[3]} |")
        if j == 0:
            lines.append("|" + "|".join("-" * (wd + 2) for wd in widths) + "|---|")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="runs per median (imports, 64-frame generation)")
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: generate's default)")
    p.add_argument("--order", default=None, help="sampling order (default: generate's default)")
    p.add_argument("--sections", type=int, nargs="+", default=[8, 32])
    p.add_argument("--cost-steps", type=int, default=4, help="sampler steps per section for the cost rows")
    p.add_argument("--cache", type=float, nargs="*", default=[0.1, 0.15],
                   help="step-cache thresholds to measure against the cache off (none: skip those rows)")
    p.add_argument("--cache-worlds", type=int, default=4, help="held-out worlds for the step cache's presence/drift")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: checks the plumbing in seconds")
    p.add_argument("--quickstart-child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.quickstart_child:
        print(json.dumps(quickstart_child(*json.loads(a.quickstart_child))))
        return 0
    if a.smoke:
        a.repeats, a.frames, a.steps, a.sections, a.cost_steps, a.cache_worlds = 1, 9, 2, [2, 3], 1, 1

    import torch

    t0 = time.perf_counter()
    rows = run_bench(a.repeats, a.frames, a.steps, a.order, tuple(a.sections), a.cost_steps, tuple(a.cache),
                     a.cache_worlds)
    bad = [r[0] for r in rows if not math.isfinite(r[1])]
    print(f"framepack-lab bench{' (smoke)' if a.smoke else ''}: torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}, {time.perf_counter() - t0:.0f} s")
    print(format_table(rows))
    if bad:
        print(f"non-finite figures: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
