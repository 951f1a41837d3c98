"""Per-section cost of the tiny FramePack as the video grows: packed vs unpacked full history.

    python benchmarks/section_cost.py [--sections 8] [--steps 4] [--repeats 3]

Prints, per section, the tokens, median seconds (after a warm-up, over interleaved repeats) and
peak memory of both runs, then the ratio (last section / first section) for each (Eq. 3 predicts
~1 for packed and growth for unpacked) and the fit of time against tokens, worded.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sections", type=int, default=8)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--schedule", default="td_f16k4f4k2f2k1_g4")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()

    from generate_speed import bench_first_frame
    from framepack_lab.cost import describe_costs, section_costs
    from framepack_lab.models.tiny import load_tiny

    costs = section_costs(load_tiny(), bench_first_frame(), a.sections, a.schedule, a.steps, repeats=a.repeats)
    print(f"{'section':>7s} {'history':>7s} | {'packed tok':>10s} {'s':>7s} {'MB':>6s} | {'unpacked tok':>12s} {'s':>7s} {'MB':>6s}")
    pk, up = costs["packed"], costs["unpacked"]
    for i in range(len(pk.seconds)):
        print(f"{i:7d} {pk.history[i]:7d} | {pk.tokens[i]:10d} {pk.seconds[i]:7.3f} {pk.peak_mb[i]:6.1f} | "
              f"{up.tokens[i]:12d} {up.seconds[i]:7.3f} {up.peak_mb[i]:6.1f}")
    print(f"ratio last/first section time: packed {pk.ratio:.2f}, unpacked {up.ratio:.2f} "
          f"({a.sections} sections, {a.steps} steps each, median of {a.repeats} repeats)")
    print(describe_costs(costs))


if __name__ == "__main__":
    main()
