"""The GeneratePanel's own overhead: one generation through the panel vs the same ``generate`` call.

    OMP_NUM_THREADS=1 python benchmarks/panel_overhead.py [--frames 64] [--steps 20] [--repeats 5]
                                                         [--profile]

The two runs alternate (panel, direct, panel, direct, ...) so a machine shared with other work
slows both alike; the figures are medians, of wall time and of CPU time (this process and its
children, e.g. the ffmpeg that encodes the panel's video), the steadier of the two when other work
competes for the cores. The panel run is ``GeneratePanel.run()`` with
``background=False`` (what papermill and a click without a worker thread do), so it includes
everything the panel adds: the token-budget figure, the live filmstrip after every section, the
final filmstrip and the video. Issue 12's target: ratio <= 1.2. ``--profile`` prints where the
panel's time goes (cProfile, the 15 largest cumulative entries of one panel run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # generate_speed, when run from elsewhere


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(fn) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of ``fn()``."""
    w0, c0 = time.perf_counter(), _cpu_seconds()
    fn()
    return time.perf_counter() - w0, _cpu_seconds() - c0


def time_panel_and_direct(backend, n_frames: int = 64, steps: int = 20, repeats: int = 5,
                          order: str = "inverted_anti_drifting") -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """``(wall, cpu)`` seconds of ``repeats`` panel runs and ``repeats`` direct ``generate`` calls,
    alternated, after one warm-up of each. Both use the same first frame, plan, steps and seed."""
    import matplotlib

    matplotlib.use("Agg")
    from generate_speed import bench_first_frame

    from framepack_lab import world
    from framepack_lab.generate import generate
    from framepack_lab.widgets import GeneratePanel

    first = bench_first_frame()
    panel = GeneratePanel(backend, world_seed=world.HELDOUT_SEEDS.start, order=order, n_frames=n_frames,
                          steps=steps, seed=0, background=False)

    def via_panel() -> None:
        if panel.run() is None:
            raise SystemExit(f"the panel refused the run: {panel.error}")

    def direct() -> None:
        generate(backend, first, n_frames=n_frames, order=order, steps=steps, seed=0)

    via_panel(), direct()  # warm-up: first-call allocations, matplotlib's font cache, ...
    panel_s, direct_s = [], []
    for _ in range(repeats):
        panel_s.append(_timed(via_panel))
        direct_s.append(_timed(direct))
    return panel_s, direct_s


def profile_panel(backend, n_frames: int, steps: int, top: int = 15) -> None:
    """Print cProfile's largest cumulative entries of one panel run."""
    import cProfile
    import pstats

    from framepack_lab import world
    from framepack_lab.widgets import GeneratePanel

    panel = GeneratePanel(backend, world_seed=world.HELDOUT_SEEDS.start, n_frames=n_frames, steps=steps,
                          background=False)
    panel.run()  # warm-up
    prof = cProfile.Profile()
    prof.runcall(panel.run)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--profile", action="store_true", help="also print where one panel run spends its time")
    a = p.parse_args()

    from framepack_lab.models.tiny import load_tiny
    from framepack_lab.runtime import describe_device

    backend = load_tiny()
    panel_s, direct_s = time_panel_and_direct(backend, a.frames, a.steps, a.repeats)
    print(f"device: {describe_device(backend)}; {a.frames} frames, {a.steps} steps, {a.repeats} alternating repeats")
    for i, what in enumerate(("wall", "CPU")):
        pt, dt = [t[i] for t in panel_s], [t[i] for t in direct_s]
        pm, dm = statistics.median(pt), statistics.median(dt)
        print(f"{what:4s} panel  (GeneratePanel.run): median {pm:.2f} s  ({', '.join(f'{t:.2f}' for t in pt)})")
        print(f"{what:4s} direct (generate):          median {dm:.2f} s  ({', '.join(f'{t:.2f}' for t in dt)})")
        print(f"{what:4s} ratio panel / direct: {pm / dm:.2f} (target <= 1.20)")
    if a.profile:
        profile_panel(backend, a.frames, a.steps)


if __name__ == "__main__":
    main()
