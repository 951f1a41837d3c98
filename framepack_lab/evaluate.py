"""Does the embedded model do what the workbook needs? ``python -m framepack_lab.evaluate``.

Generates 64-frame videos from the first frames of held-out worlds with each sampling order and
prints, per order:

1. **survival**: fraction of first-frame sprites still found at frame 16 (target >= 0.8 for the
   default order);
2. **motion**: mean sprite displacement over 16 frames relative to the world's true displacement
   (target >= 0.5; the direction is the model's choice);
3. **drift**: start-end contrast (first vs last 15% of frames) of the colour-statistics distance
   to the first frame (target: vanilla >= 2x inverted anti-drifting);
4. **seconds** per 64-frame video on this machine.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from . import metrics, world
from .generate import DEFAULT_ORDER, generate
from .plan import ORDERS


def evaluate(backend, orders=ORDERS, n_seeds: int = 16, n_frames: int = 64, steps: int = 20,
             probe_frame: int = 16, seed: int = 0, progress: bool = True) -> dict[str, dict[str, float]]:
    """Per-order figures over ``n_seeds`` held-out worlds (see the module docstring).

    Returns ``{order: {"survival", "motion", "drift", "seconds", "survival_sd", "drift_sd"}}``.
    """
    seeds = list(world.HELDOUT_SEEDS)[:n_seeds]
    firsts = {s: world.video(s, 1)[0] for s in seeds}
    out = {}
    for order in orders:
        surv, gen_d, true_d, drift, secs = [], [], [], [], []
        for s in seeds:
            t0 = time.perf_counter()
            r = generate(backend, firsts[s], n_frames=n_frames, order=order, steps=steps, seed=seed + s)
            secs.append(time.perf_counter() - t0)
            v = r.frames
            sv = metrics.sprite_survival(v, probe_frame)
            if not math.isnan(sv):
                surv.append(sv)
            moved, truth = metrics.sprite_displacements(v, probe_frame), metrics.true_displacements(world.make_world(s), probe_frame)
            for c, d in moved.items():
                if c in truth:
                    gen_d.append(d)
                    true_d.append(truth[c])
            drift.append(metrics.start_end_contrast(metrics.colour_drift(v)))
        out[order] = {
            "survival": _mean(surv), "survival_sd": float(np.std(surv)) if surv else float("nan"),
            "motion": float(np.sum(gen_d) / max(np.sum(true_d), 1e-9)),
            "drift": float(np.mean(drift)), "drift_sd": float(np.std(drift)),
            "seconds": float(np.median(secs)),
        }
        if progress:
            print(f"  {order:24s} " + "  ".join(f"{k}={v:.3f}" for k, v in out[order].items()), flush=True)
    return out


def _mean(values) -> float:
    """Mean, or NaN for no values (e.g. no sprite found in any first frame)."""
    return float(np.mean(values)) if len(values) else float("nan")


def format_report(res: dict[str, dict[str, float]]) -> str:
    lines = [f"{'order':24s} {'survival@16':>12s} {'motion':>8s} {'drift':>8s} {'s/video':>8s}"]
    for order, r in res.items():
        mark = " (default)" if order == DEFAULT_ORDER else ""
        lines.append(f"{order:24s} {r['survival']:12.2f} {r['motion']:8.2f} {r['drift']:8.4f} {r['seconds']:8.2f}{mark}")
    if "vanilla" in res and "inverted_anti_drifting" in res:
        ratio = res["vanilla"]["drift"] / max(res["inverted_anti_drifting"]["drift"], 1e-9)
        lines.append(f"drift ratio vanilla / inverted anti-drifting: {ratio:.2f} (target >= 2)")
    d = res.get(DEFAULT_ORDER)
    if d:
        lines.append(f"default order {DEFAULT_ORDER}: survival {d['survival']:.2f} (target >= 0.8), "
                     f"motion {d['motion']:.2f} (target >= 0.5)")
    return "\n".join(lines)


def main(argv=None) -> None:
    from .models.tiny import load_tiny

    p = argparse.ArgumentParser(description="Evaluate the tiny FramePack on held-out worlds.")
    p.add_argument("--checkpoint", default=None, help="folder with model.safetensors (default: shipped)")
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--orders", nargs="*", default=list(ORDERS))
    a = p.parse_args(argv)
    backend = load_tiny(a.checkpoint)
    res = evaluate(backend, a.orders, a.seeds, a.frames, a.steps)
    print(format_report(res))



def denoising_error(backend, order: str = "vanilla", schedule=None, n_worlds: int = 8, n_frames: int = 64,
                    noise_levels=(0.3, 0.6, 0.9), rope_mode: str = "average", rope_time_offset: bool = True,
                    seed: int = 0) -> float:
    """Mean squared x0 error of the model on held-out ground truth (teacher forcing).

    Every step of the plan is packed from the *true* latents of held-out worlds, noised at each
    of ``noise_levels``, and denoised in one model call; the error is averaged over steps, levels
    and worlds. Comparing RoPE alignments (``rope_mode``, ``rope_time_offset``) this way measures
    what misalignment costs without sampling noise.
    """
    import torch

    from .packing import pack
    from .plan import make_plan

    saved = backend.rope_mode, backend.rope_time_offset
    backend.rope_mode, backend.rope_time_offset = rope_mode, rope_time_offset
    try:
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
    finally:
        backend.rope_mode, backend.rope_time_offset = saved


if __name__ == "__main__":
    main()
