"""One check for whoever has a CUDA GPU: the CUDA tests, the tiny model's speed, HunyuanVideo in bf16.

    make gpu-check                                    # or: python benchmarks/gpu_check.py --out build/gpu_check.json
    python benchmarks/gpu_check.py --repeats 5 --out gpu.json

What it runs, in this order, in well under 10 minutes on one GPU:

1. ``pytest tests/test_gpu.py -k "not gpu_check"``: the CUDA tests of both backends (the tiny model on CUDA against the
   CPU; the HunyuanVideo stand-in in bf16 on CUDA against diffusers' pipeline and against float32
   on the CPU; timed prompts and an end frame in bf16). Passed / failed / skipped counts.
2. The shipped tiny model on the GPU: seconds to generate 64 frames of 64x64 at ``generate``'s
   default order and steps, median of ``--repeats`` runs after a warm-up
   (``generate_speed.time_generation``, as ``make bench`` times it on the CPU), and the peak CUDA
   memory allocated.
3. The HunyuanVideo plumbing on tiny random components in bf16 on the GPU: our loop with
   ``official_plan`` against ``HunyuanVideoFramepackPipeline`` (inverted order with an end frame,
   and F1), the largest latent difference and the seconds of both runs; and a generation with
   timed prompts and an end frame.

It prints one Markdown table and, with ``--out``, writes it as JSON (with the device, torch and
CUDA versions, and whether every check passed).

Exit status: 0 every check passed; 1 a check failed (the table says which); 3 no CUDA device:
nothing was checked (a message says so, and ``--out`` records it), so CPU-only machines (CI) are
not mistaken for a passing GPU check.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

EXIT_OK, EXIT_FAILED, EXIT_NO_GPU = 0, 1, 3
GPU_TESTS = ("tests/test_gpu.py", "-k", "not gpu_check")  # the CUDA tests; not the tests of this script itself
PYTEST_TIMEOUT_S = 300      # the CUDA tests take seconds on a GPU; this bounds a hung run
HUNYUAN_SIZE = (48, 80)     # pixels of the stand-in's frames (latent 6 x 10)
BF16_PIPELINE = 5e-2        # our loop vs diffusers' pipeline, both bf16 on CUDA: max |latent difference|


def _row(check: str, value, unit: str, ok: bool | None, how: str) -> dict:
    return {"check": check, "value": value, "unit": unit, "ok": ok, "how": how}


def run_gpu_tests(timeout_s: int = PYTEST_TIMEOUT_S) -> dict:
    """``pytest tests/test_gpu.py`` in a subprocess: one row with its counts."""
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", *GPU_TESTS, "-q", "-rs", "-p", "no:cacheprovider"],
                             cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
                             env=dict(os.environ, HF_HUB_OFFLINE="1"))
    except subprocess.TimeoutExpired:
        return _row("CUDA tests (pytest tests/test_gpu.py)", None, "", False, f"timed out after {timeout_s} s")
    tail = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-300:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", tail)}
    ok = out.returncode == 0 and counts.get("passed", 0) > 0 and not counts.get("skipped")  # none skipped on a GPU
    if out.returncode != 0:
        print(out.stdout[-4000:], out.stderr[-2000:], sep="\n", file=sys.stderr)
    return _row("CUDA tests (pytest tests/test_gpu.py)", counts.get("passed", 0), "passed", ok,
                f"{tail} in {time.perf_counter() - t0:.1f} s")


def time_tiny(repeats: int, n_frames: int = 64) -> list[dict]:
    """The shipped tiny model on CUDA: median seconds for ``n_frames`` at generate's defaults."""
    import torch
    from generate_speed import bench_first_frame, time_generation

    from framepack_lab.generate import DEFAULT_ORDER, generate
    from framepack_lab.models.tiny import load_tiny

    steps = inspect.signature(generate).parameters["steps"].default
    backend = load_tiny(device="cuda")
    torch.cuda.reset_peak_memory_stats()
    times = time_generation(backend, bench_first_frame(), n_frames=n_frames, steps=steps, order=DEFAULT_ORDER,
                            repeats=repeats)
    how = f"shipped tiny model on {torch.cuda.get_device_name()}, {DEFAULT_ORDER}, {steps} steps"
    return [_row(f"tiny model: generate {n_frames} frames", statistics.median(times), "s", True,
                 f"{how}; median of {repeats} runs after a warm-up ({', '.join(f'{t:.2f}' for t in times)})"),
            _row("tiny model: peak CUDA memory", torch.cuda.max_memory_allocated() / 2**20, "MiB", True,
                 "torch.cuda.max_memory_allocated over the timed runs")]


def hunyuan_bf16(seed: int = 7) -> list[dict]:
    """The HunyuanVideo stand-in in bf16 on CUDA: our loop vs diffusers' pipeline, and timed prompts."""
    import numpy as np
    import torch

    from framepack_lab.generate import generate
    from framepack_lab.models import hunyuan as hy

    H, W = HUNYUAN_SIZE
    rng = np.random.default_rng(0)
    first, end = ((rng.random((H, W, 3)) * 255).astype(np.uint8) for _ in range(2))
    backend = hy.tiny_backend(seed=0, vae_tiling=False, device="cuda", dtype=torch.bfloat16)
    rows = []
    for order, n_sections, last in (("inverted_anti_drifting", 3, end), ("f1", 3, None)):
        t0 = time.perf_counter()
        check = hy.compare_with_pipeline(backend, first, "a penguin dances", order, n_sections, last_image=last,
                                         seed=seed)
        seconds = time.perf_counter() - t0
        ok = bool(torch.isfinite(check.result.latents).all()) and check.max_diff < BF16_PIPELINE
        what = f"{order}{' + end frame' if last is not None else ''}"
        rows.append(_row(f"HunyuanVideo bf16: ours vs pipeline, {what}", check.max_diff, "max abs diff", ok,
                         f"tiny random components, {n_sections} sections of 3 latent frames, 4 steps, largest "
                         f"abs latent {check.row()['max |latent|']:.2f}; both runs {seconds:.2f} s"))
    cond = backend.condition("[0s-0.4s] a cat walks; [0.4s-2s] a dog runs", first, last_image=end)
    plan = hy.official_plan("inverted_anti_drifting", 3, window=3)
    t0 = time.perf_counter()
    result = generate(backend, first, plan=plan, steps=4, seed=seed, cond=cond)
    prompts = [row["prompt"] for row in backend.section_table(plan, cond)]
    ok = bool(np.isfinite(result.frames).all()) and prompts == ["a dog runs", "a dog runs", "a cat walks"]
    rows.append(_row("HunyuanVideo bf16: timed prompts + end frame", time.perf_counter() - t0, "s", ok,
                     f"3 sections, 4 steps; prompts in generation order: {prompts}"))
    return rows


def _guarded(name: str, fn, *args) -> list[dict]:
    """Run one part; an exception becomes a failed row instead of ending the check."""
    try:
        out = fn(*args)
        return out if isinstance(out, list) else [out]
    except Exception as e:  # noqa: BLE001 - reported in the table and the exit status
        return [_row(name, None, "", False, f"{type(e).__name__}: {e}"[:300])]


def table(rows: list[dict]) -> str:
    def fmt(v):
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| check | value | unit | ok | how |", "|---|---|---|---|---|"]
    ok = {None: "-", True: "yes", False: "NO"}
    lines += [f"| {r['check']} | {fmt(r['value'])} | {r['unit']} | {ok[r['ok']]} | {r['how']} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=None, help="write the table as JSON here (e.g. build/gpu_check.json)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of the tiny model (median reported)")
    p.add_argument("--skip-tests", action="store_true", help="leave out the pytest run (timings and bf16 only)")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error(f"--repeats must be at least 1, got {a.repeats}")

    import torch

    report = {"device": None, "torch": torch.__version__, "cuda": torch.version.cuda, "rows": [], "ok": False}
    if not torch.cuda.is_available():
        report["status"] = "no CUDA device: nothing checked"
        print(f"gpu_check: no CUDA device on this machine (torch {torch.__version__}, built for CUDA "
              f"{torch.version.cuda or 'none'}): nothing was checked. Run it on a machine with an NVIDIA GPU and a "
              "CUDA build of torch (make setup TORCH_SPEC=...; see the Makefile); on the CPU, make test covers "
              f"everything else. Exit status {EXIT_NO_GPU}.")
        _write(a.out, report)
        return EXIT_NO_GPU

    report["device"] = torch.cuda.get_device_name()
    t0 = time.perf_counter()
    rows = [] if a.skip_tests else [run_gpu_tests()]
    rows += _guarded("tiny model on CUDA", time_tiny, a.repeats)
    rows += _guarded("HunyuanVideo bf16 on CUDA", hunyuan_bf16)
    report.update(rows=rows, ok=all(r["ok"] is not False for r in rows), seconds=time.perf_counter() - t0)
    print(f"GPU check on {report['device']} (torch {report['torch']}, CUDA {report['cuda']}), "
          f"{report['seconds']:.0f} s\n")
    print(table(rows))
    _write(a.out, report)
    return EXIT_OK if report["ok"] else EXIT_FAILED


def _write(path: Path | None, report: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwritten: {path}")


if __name__ == "__main__":
    sys.exit(main())
