"""Seconds to load the shipped tiny FramePack and to generate 64 frames of 64x64 on this machine.

    python benchmarks/generate_speed.py [--frames 64] [--steps 20] [--repeats 3] [--threads N]

Targets (issue: the embedded FramePack): load < 2 s; 64 frames at the default 20 Euler steps
<= 10 s on a 2-core CPU. Prints one line per figure; the generation figure is the median of the
repeats, per sampling order.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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

    from framepack_lab import world
    from framepack_lab.generate import generate
    from framepack_lab.models.tiny import load_tiny

    t_import = time.perf_counter() - t0
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    backend = load_tiny()
    t_load = time.perf_counter() - t0
    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    generate(backend, first, n_frames=9, steps=2)  # warm-up
    print(f"torch threads: {torch.get_num_threads()}, cpu cores: {os.cpu_count()}")
    print(f"import: {t_import:.2f} s")
    print(f"load_tiny: {t_load:.2f} s (target < 2 s)")
    for order in a.orders:
        times = []
        for r in range(a.repeats):
            t0 = time.perf_counter()
            res = generate(backend, first, n_frames=a.frames, order=order, steps=a.steps, seed=r)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        per = med / len(res.plan.steps)
        print(f"generate {a.frames} frames, {a.steps} steps, {order}: {med:.2f} s median of {a.repeats} "
              f"({per:.3f} s per section; target <= 10 s)")


if __name__ == "__main__":
    main()
