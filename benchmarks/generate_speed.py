"""Seconds to load the shipped tiny FramePack and to generate 64 frames of 64x64 on this machine.

    python benchmarks/generate_speed.py [--frames 64] [--steps 20] [--repeats 3] [--threads N]

Targets (issue: the embedded FramePack): load < 2 s; 64 frames at the default 20 Euler steps
<= 10 s on a 2-core CPU. Prints one line per figure; the generation figure is the median of the
repeats, per sampling order. :func:`bench_first_frame` and :func:`time_generation` are shared
with ``benchmarks/bench.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def bench_first_frame():
    """The first frame every benchmark starts from: the first held-out world's ``(64, 64, 3)``."""
    from framepack_lab import world

    return world.video(world.HELDOUT_SEEDS.start, 1)[0]


def time_generation(backend, first_frame, n_frames: int = 64, steps: int = 20,
                    order: str = "inverted_anti_drifting", repeats: int = 3, warmup: bool = True) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``generate`` (repeat ``r`` uses seed ``r``), after a short
    warm-up run (first-call allocations and kernel selection are not what a user waits for twice)."""
    from framepack_lab.generate import generate

    if warmup:
        generate(backend, first_frame, n_frames=9, steps=2)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        generate(backend, first_frame, n_frames=n_frames, order=order, steps=steps, seed=r)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--orders", nargs="*", default=["inverted_anti_drifting", "vanilla"])
    a = p.parse_args()

    t0 = time.perf_counter()
    import torch

    import framepack_lab.generate  # noqa: F401  (timed with the rest, as before)
    import framepack_lab.world  # noqa: F401
    from framepack_lab.models.tiny import load_tiny
    from framepack_lab.plan import make_plan

    t_import = time.perf_counter() - t0
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    backend = load_tiny()
    t_load = time.perf_counter() - t0
    first = bench_first_frame()
    print(f"torch threads: {torch.get_num_threads()}, cpu cores: {os.cpu_count()}")
    print(f"import: {t_import:.2f} s")
    print(f"load_tiny: {t_load:.2f} s (target < 2 s)")
    for i, order in enumerate(a.orders):
        med = statistics.median(time_generation(backend, first, a.frames, a.steps, order, a.repeats, warmup=i == 0))
        per = med / len(make_plan(order, a.frames).steps)
        print(f"generate {a.frames} frames, {a.steps} steps, {order}: {med:.2f} s median of {a.repeats} "
              f"({per:.3f} s per section; target <= 10 s)")


if __name__ == "__main__":
    main()
