"""CUDA checks of both backends: skipped without a CUDA GPU (CI is CPU-only), and the GPU check's
CPU path (it says there is no GPU and exits with its documented status).

``benchmarks/gpu_check.py`` (``make gpu-check``) runs this file on a GPU machine, beside its timings.
The tolerances below are for different kernels, not for bugs: CPU and GPU round differently (the
GPU's convolutions use TF32 by default), and bf16 keeps 8 bits of mantissa.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from framepack_lab import world
from framepack_lab.generate import generate
from framepack_lab.models.tiny import load_tiny

ROOT = Path(__file__).resolve().parents[1]
cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                          reason="needs a CUDA GPU (run benchmarks/gpu_check.py, or make gpu-check, on one)")

TINY_MEAN_ABS = 0.03   # tiny model, CUDA vs CPU: mean |difference| of the pixel frames in [0, 1]
BF16_REL = 0.1         # HunyuanVideo stand-in, bf16 on CUDA vs float32 on the CPU: relative L2 of the latents
BF16_PIPELINE = 5e-2   # our loop vs diffusers' pipeline, both bf16 on CUDA: max |difference| of the latents
H, W = 48, 80


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@cuda
def test_tiny_model_generates_on_cuda_like_on_the_cpu():
    first = world.video(world.HELDOUT_SEEDS.start, 1)[0]
    gpu, cpu = load_tiny(device="cuda"), load_tiny(device="cpu")
    assert gpu.device.type == "cuda" and next(gpu.model.parameters()).is_cuda
    a = generate(gpu, first, n_frames=17, steps=8, seed=0)
    b = generate(cpu, first, n_frames=17, steps=8, seed=0)
    assert a.frames.shape == b.frames.shape == (17, 64, 64, 3) and np.isfinite(a.frames).all()
    assert float(np.abs(a.frames - b.frames).mean()) < TINY_MEAN_ABS


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [(rng.random((H, W, 3)) * 255).astype(np.uint8) for _ in range(2)]


@cuda
@pytest.mark.parametrize("order,n_sections,with_end", [("inverted_anti_drifting", 3, True), ("f1", 2, False)])
def test_hunyuan_stand_in_in_bf16_on_cuda_matches_the_pipeline_and_the_cpu(images, order, n_sections, with_end):
    pytest.importorskip("diffusers")
    from framepack_lab.models import hunyuan as hy

    first, end = images[0], images[1] if with_end else None
    gpu = hy.tiny_backend(seed=0, vae_tiling=False, device="cuda", dtype=torch.bfloat16)
    assert gpu.device.type == "cuda" and gpu.dtype == torch.bfloat16
    check = hy.compare_with_pipeline(gpu, first, "a penguin dances", order, n_sections, last_image=end, seed=7)
    assert torch.isfinite(check.result.latents).all() and check.max_diff < BF16_PIPELINE
    cpu = hy.compare_with_pipeline(hy.tiny_backend(seed=0, vae_tiling=False), first, "a penguin dances", order,
                                   n_sections, last_image=end, seed=7)
    assert _rel(check.result.latents, cpu.result.latents) < BF16_REL


@cuda
def test_hunyuan_timed_prompts_and_end_frame_in_bf16_on_cuda(images):
    pytest.importorskip("diffusers")
    from framepack_lab.models import hunyuan as hy

    gpu = hy.tiny_backend(seed=0, vae_tiling=False, device="cuda", dtype=torch.bfloat16)
    cond = gpu.condition("[0s-0.4s] a cat walks; [0.4s-2s] a dog runs", images[0], last_image=images[1])
    assert cond.end_latent.is_cuda and all(t.dtype == torch.bfloat16 for t in cond.texts["a dog runs"])
    plan = hy.official_plan("inverted_anti_drifting", 3, window=3)
    r = generate(gpu, images[0], plan=plan, steps=2, seed=0, cond=cond)
    assert r.frames.shape == (hy.pixel_frames(10), H, W, 3) and np.isfinite(r.frames).all()
    assert [row["prompt"] for row in gpu.section_table(plan, cond)] == ["a dog runs", "a dog runs", "a cat walks"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_gpu_check_without_cuda_says_so_and_exits_3(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path / "g.json")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "no CUDA device on this machine" in out.stdout and "nothing was checked" in out.stdout
    report = json.loads((tmp_path / "g.json").read_text())
    assert report["ok"] is False and report["rows"] == [] and report["status"] == "no CUDA device: nothing checked"


def test_gpu_check_refuses_bad_repeats():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--repeats", "0"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2 and "--repeats must be at least 1, got 0" in out.stderr
